import { describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { uniqueGid } from '../support/tm-harness';
import { b64, timeline, useGrpcFixture } from '../peers/grpc-fixture';

// Transactions are submitted over HTTP with protocol grpc and bin_payloads (what the gRPC API passes on);
// every branch is a method of a grpc-js RM on loopback.
const fx = useGrpcFixture({ backoffCapS: 8 });
const ok = { status: 200, body: { dtm_result: 'SUCCESS' } };

/** Protobuf bytes of DTM's busi.ReqGrpc{Amount: n} (field 1, varint): what a Go RM would get. */
const reqGrpc = (amount: number): Buffer => Buffer.from([0x08, amount]);

const grpcSaga = (gid: string, methods: [string, string][], extra: Record<string, unknown> = {}) => ({
  gid,
  trans_type: 'saga',
  protocol: 'grpc',
  steps: methods.map(([action, compensate]) => ({ action: fx.grpc.url(action), compensate: fx.grpc.url(compensate) })),
  bin_payloads: methods.map((_, i) => b64(reqGrpc(30 + i))),
  ...extra,
});

describe('saga over gRPC', () => {
  it('when every action answers OK, then they run in order with the payload bytes and dtm metadata, and it succeeds', async () => {
    const gid = uniqueGid('gsaga');
    const res = await fx.dtm.post(
      '/submit',
      grpcSaga(
        gid,
        [
          ['TransOut', 'TransOutRevert'],
          ['TransIn', 'TransInRevert'],
        ],
        { branch_headers: { 'X-Tenant': 'acme' } },
      ),
    );
    expect(res).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed');
    const out = fx.grpc.callsTo(gid, 'TransOut');
    const into = fx.grpc.callsTo(gid, 'TransIn');
    expect(out).toHaveLength(1);
    expect(into).toHaveLength(1);
    expect(out[0]!.at).toBeLessThanOrEqual(into[0]!.at);
    expect(out[0]!.body.equals(reqGrpc(30))).toBe(true);
    expect(into[0]!.body.equals(reqGrpc(31))).toBe(true);
    expect(into[0]!.metadata).toMatchObject({
      'dtm-gid': gid,
      'dtm-trans_type': 'saga',
      'dtm-branch_id': '02',
      'dtm-op': 'action',
      'x-tenant': 'acme',
    });
    expect(fx.grpc.callsTo(gid, 'TransOutRevert')).toHaveLength(0);
    // /query shows the stored bytes as DTM does: bin_data is their base64; the protocol is kept.
    const q = await fx.dtm.query(gid);
    expect(q.transaction).toMatchObject({ protocol: 'grpc' });
    expect(q.branches.filter((b) => b.op === 'action').map((b) => b.bin_data)).toEqual([
      b64(reqGrpc(30)),
      b64(reqGrpc(31)),
    ]);
  });

  it('when payloads are text on a gRPC saga, then the RM gets their UTF-8 bytes (DTM: []byte(payload))', async () => {
    const gid = uniqueGid('gsaga-text');
    const body = { ...grpcSaga(gid, [['TransOut', 'TransOutRevert']]), bin_payloads: undefined, payloads: ['Zoë'] };
    expect(await fx.dtm.post('/submit', body)).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed');
    expect(fx.grpc.callsTo(gid, 'TransOut')[0]!.body.toString('utf8')).toBe('Zoë');
  });

  it('when an action answers ABORTED, then the saga fails and the done steps are compensated in reverse order', async () => {
    const gid = uniqueGid('gsaga-abort');
    fx.grpc.script(gid, 'Step2', [{ code: status.ABORTED, details: 'insufficient balance' }]);
    const res = await fx.dtm.post(
      '/submit',
      grpcSaga(gid, [
        ['TransOut', 'TransOutRevert'],
        ['TransIn', 'TransInRevert'],
        ['Step2', 'Step2Revert'],
      ]),
    );
    expect(res).toEqual(ok);
    const tx = await fx.dtm.waitFor(gid, 'failed');
    expect(tx.rollback_reason).toContain('insufficient balance');
    // DTM compensates the refused step too (the barrier makes that a no-op), then the others, last first.
    const reverts = ['Step2Revert', 'TransInRevert', 'TransOutRevert'].map((m) => fx.grpc.callsTo(gid, m));
    expect(reverts.map((c) => c.length)).toEqual([1, 1, 1]);
    const times = reverts.map((c) => c[0]!.at);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect((await timeline(fx.dtm, gid)).compensations.map((c) => c.branchId)).toEqual(['03', '02', '01']);
    expect(reverts[2]![0]!.metadata).toMatchObject({ 'dtm-op': 'compensate', 'dtm-branch_id': '01' });
  });

  it('when the saga is concurrent, then steps start together as orders allow', async () => {
    const gid = uniqueGid('gsaga-conc');
    fx.grpc.script(gid, 'TransOut', [{ code: 0, delayMs: 300 }]);
    fx.grpc.script(gid, 'TransIn', [{ code: 0, delayMs: 300 }]);
    const res = await fx.dtm.post(
      '/submit',
      grpcSaga(
        gid,
        [
          ['TransOut', 'TransOutRevert'],
          ['TransIn', 'TransInRevert'],
          ['Step2', 'Step2Revert'],
        ],
        { custom_data: JSON.stringify({ concurrent: true, orders: { 2: [0, 1] } }) },
      ),
    );
    expect(res).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed');
    const [a, b, c] = ['TransOut', 'TransIn', 'Step2'].map((m) => fx.grpc.callsTo(gid, m)[0]!.at);
    // Steps 1 and 2 overlap (each takes 300 ms); step 3 waits for both.
    expect(Math.abs(a! - b!)).toBeLessThan(250);
    expect(c!).toBeGreaterThanOrEqual(Math.max(a!, b!) + 290);
  });
});

describe('TCC over gRPC', () => {
  const tcc = async (gid: string) => {
    expect(await fx.dtm.post('/prepare', { gid, trans_type: 'tcc', protocol: 'grpc' })).toEqual(ok);
    for (const [id, confirm, cancel, amount] of [
      ['01', 'TransOutConfirm', 'TransOutRevert', 30],
      ['02', 'TransInConfirm', 'TransInRevert', 31],
    ] as const) {
      const reg = {
        gid,
        trans_type: 'tcc',
        branch_id: id,
        bin_data: b64(reqGrpc(amount)),
        confirm: fx.grpc.url(confirm),
        cancel: fx.grpc.url(cancel),
      };
      expect(await fx.dtm.post('/registerBranch', reg)).toEqual(ok);
    }
  };

  it('when submitted, then each confirm is called with its bytes, last registered first', async () => {
    const gid = uniqueGid('gtcc');
    await tcc(gid);
    expect(await fx.dtm.post('/submit', { gid, trans_type: 'tcc' })).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed');
    const [out, into] = ['TransOutConfirm', 'TransInConfirm'].map((m) => fx.grpc.callsTo(gid, m));
    expect(out).toHaveLength(1);
    expect(into).toHaveLength(1);
    expect(into![0]!.at).toBeLessThanOrEqual(out![0]!.at);
    expect(out![0]!.body.equals(reqGrpc(30))).toBe(true);
    expect(out![0]!.metadata).toMatchObject({ 'dtm-op': 'confirm', 'dtm-trans_type': 'tcc', 'dtm-branch_id': '01' });
    expect(fx.grpc.callsTo(gid, 'TransOutRevert')).toHaveLength(0);
  });

  it('when aborted, then each cancel is called; a cancel answering ABORTED is retried until it says OK', async () => {
    const gid = uniqueGid('gtcc-cancel');
    await tcc(gid);
    fx.grpc.script(gid, 'TransOutRevert', [{ code: status.ABORTED, details: 'not now' }, status.OK]);
    expect(await fx.dtm.post('/abort', { gid, trans_type: 'tcc' })).toEqual(ok);
    await fx.dtm.waitFor(gid, 'failed', 15_000);
    expect(fx.grpc.callsTo(gid, 'TransInRevert')).toHaveLength(1);
    expect(fx.grpc.callsTo(gid, 'TransOutRevert')).toHaveLength(2);
    expect(fx.grpc.callsTo(gid, 'TransOutRevert')[0]!.metadata['dtm-op']).toBe('cancel');
    expect(fx.grpc.callsTo(gid, 'TransOutConfirm')).toHaveLength(0);
  });

  it('when a branch is registered with data as text, then the RM gets its UTF-8 bytes', async () => {
    const gid = uniqueGid('gtcc-text');
    await fx.dtm.post('/prepare', { gid, trans_type: 'tcc', protocol: 'grpc' });
    const reg = {
      gid,
      trans_type: 'tcc',
      branch_id: '01',
      data: '{"amount":30}',
      confirm: fx.grpc.url('TransOutConfirm'),
      cancel: fx.grpc.url('TransOutRevert'),
    };
    expect(await fx.dtm.post('/registerBranch', reg)).toEqual(ok);
    await fx.dtm.post('/submit', { gid, trans_type: 'tcc' });
    await fx.dtm.waitFor(gid, 'succeed');
    expect(fx.grpc.callsTo(gid, 'TransOutConfirm')[0]!.body.toString()).toBe('{"amount":30}');
    expect((await fx.dtm.query(gid)).branches.map((b) => b.bin_data)).toEqual([
      b64('{"amount":30}'),
      b64('{"amount":30}'),
    ]);
  });
});

describe('XA over gRPC', () => {
  const xa = async (gid: string) => {
    expect(await fx.dtm.post('/prepare', { gid, trans_type: 'xa', protocol: 'grpc' })).toEqual(ok);
    for (const [id, method] of [
      ['01', 'TransOutXa'],
      ['02', 'TransInXa'],
    ]) {
      const reg = { gid, trans_type: 'xa', branch_id: id, url: fx.grpc.url(method!) };
      expect(await fx.dtm.post('/registerBranch', reg)).toEqual(ok);
    }
  };

  it('when submitted, then the registered url is called with op commit for each branch, in order', async () => {
    const gid = uniqueGid('gxa');
    await xa(gid);
    expect(await fx.dtm.post('/submit', { gid, trans_type: 'xa' })).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed');
    const [out, into] = ['TransOutXa', 'TransInXa'].map((m) => fx.grpc.callsTo(gid, m));
    expect(out!.map((c) => c.metadata['dtm-op'])).toEqual(['commit']);
    expect(into!.map((c) => c.metadata['dtm-op'])).toEqual(['commit']);
    expect(out![0]!.at).toBeLessThanOrEqual(into![0]!.at);
  });

  it('when aborted, then the registered url is called with op rollback', async () => {
    const gid = uniqueGid('gxa-rb');
    await xa(gid);
    expect(await fx.dtm.post('/abort', { gid, trans_type: 'xa' })).toEqual(ok);
    await fx.dtm.waitFor(gid, 'failed');
    for (const m of ['TransOutXa', 'TransInXa']) {
      expect(fx.grpc.callsTo(gid, m).map((c) => c.metadata['dtm-op'])).toEqual(['rollback']);
    }
  });
});

describe('two-phase message over gRPC', () => {
  const msg = (gid: string, extra: Record<string, unknown> = {}) => ({
    gid,
    trans_type: 'msg',
    protocol: 'grpc',
    steps: [{ action: fx.grpc.url('TransOut') }, { action: fx.grpc.url('TransIn') }],
    bin_payloads: [b64(reqGrpc(30)), b64(reqGrpc(31))],
    query_prepared: fx.grpc.url('QueryPrepared'),
    ...extra,
  });

  it('when submitted, then every step is delivered with its bytes', async () => {
    const gid = uniqueGid('gmsg');
    expect(await fx.dtm.post('/prepare', msg(gid))).toEqual(ok);
    expect(await fx.dtm.post('/submit', msg(gid))).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed');
    expect(fx.grpc.callsTo(gid, 'TransOut')[0]!.body.equals(reqGrpc(30))).toBe(true);
    expect(fx.grpc.callsTo(gid, 'TransIn')[0]!.body.equals(reqGrpc(31))).toBe(true);
    expect(fx.grpc.callsTo(gid, 'QueryPrepared')).toHaveLength(0);
  });

  it('when a prepared message times out, then QueryPrepared is asked (branch 00, op msg, no body); OK delivers it', async () => {
    const gid = uniqueGid('gmsg-cb-ok');
    fx.grpc.script(gid, 'QueryPrepared', [status.FAILED_PRECONDITION, status.OK]);
    expect(await fx.dtm.post('/prepare', msg(gid, { timeout_to_fail: 1, retry_interval: 1 }))).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed', 15_000);
    const checks = fx.grpc.callsTo(gid, 'QueryPrepared');
    expect(checks).toHaveLength(2);
    expect(checks[0]!.body).toHaveLength(0);
    expect(checks[0]!.metadata).toMatchObject({ 'dtm-branch_id': '00', 'dtm-op': 'msg', 'dtm-trans_type': 'msg' });
    expect(fx.grpc.callsTo(gid, 'TransIn')).toHaveLength(1);
    const retries = (await timeline(fx.dtm, gid)).events.filter((e) => e.type === 'CheckBackRetryScheduled');
    expect(retries.map((e) => e.outcome)).toEqual(['ongoing']);
  });

  it('when the check-back answers ABORTED, then the message fails and nothing is delivered', async () => {
    const gid = uniqueGid('gmsg-cb-no');
    fx.grpc.script(gid, 'QueryPrepared', [{ code: status.ABORTED, details: 'rolled back' }]);
    expect(await fx.dtm.post('/prepare', msg(gid, { timeout_to_fail: 1 }))).toEqual(ok);
    const tx = await fx.dtm.waitFor(gid, 'failed', 15_000);
    expect(tx.rollback_reason).toContain('rolled back');
    expect(fx.grpc.callsTo(gid, 'TransOut')).toHaveLength(0);
    expect(fx.grpc.callsTo(gid, 'TransIn')).toHaveLength(0);
  });

  it('when the check-back errs (UNAVAILABLE), then it is asked again after a backoff, and nothing is delivered meanwhile', async () => {
    const gid = uniqueGid('gmsg-cb-err');
    fx.grpc.script(gid, 'QueryPrepared', [status.UNAVAILABLE, status.INTERNAL, status.OK]);
    expect(await fx.dtm.post('/prepare', msg(gid, { timeout_to_fail: 1, retry_interval: 1 }))).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed', 15_000);
    const retries = (await timeline(fx.dtm, gid)).events.filter((e) => e.type === 'CheckBackRetryScheduled');
    expect(retries.map((e) => e.outcome)).toEqual(['error', 'error']);
    expect(retries.map((e) => Date.parse(e.retryAt!) - Date.parse(e.at))).toEqual([1_000, 2_000]);
    const firstDelivery = fx.grpc.callsTo(gid, 'TransOut')[0]!.at;
    expect(fx.grpc.callsTo(gid, 'QueryPrepared').every((c) => c.at <= firstDelivery)).toBe(true);
  });

  it('when a message goes to a topic with gRPC subscribers, then each one gets the bytes as its own branch', async () => {
    const topic = uniqueGid('gtopic');
    const gid = uniqueGid('gmsg-topic');
    for (const m of ['TransIn', 'TransOut']) {
      const sub = await fx.dtm.get(`/subscribe?topic=${topic}&url=${encodeURIComponent(fx.grpc.url(m))}&remark=${m}`);
      expect(sub).toEqual(ok);
    }
    const body = { ...msg(gid), steps: [{ action: `topic://${topic}` }], bin_payloads: [b64(reqGrpc(7))] };
    expect(await fx.dtm.post('/submit', body)).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed');
    const calls = ['TransIn', 'TransOut'].map((m) => fx.grpc.callsTo(gid, m));
    expect(calls.map((c) => c.map((x) => x.metadata['dtm-branch_id']))).toEqual([['01-01'], ['01-02']]);
    expect(calls.every((c) => c[0]!.body.equals(reqGrpc(7)))).toBe(true);
  });
});

describe('workflow over gRPC', () => {
  it('while unfinished, its callback workflow.Workflow/Execute gets WorkflowData{Data: input} and op = its name', async () => {
    const gid = uniqueGid('gwf');
    const input = reqGrpc(42);
    const body = {
      gid,
      trans_type: 'workflow',
      protocol: 'grpc',
      query_prepared: fx.grpc.url('/workflow.Workflow/Execute'),
      custom_data: JSON.stringify({ name: 'transfer', data: b64(input) }),
      retry_interval: 1,
    };
    const res = await fx.dtm.post('/prepareWorkflow', body);
    expect(res.status).toBe(200);
    await expect
      .poll(() => fx.grpc.callsTo(gid, '/workflow.Workflow/Execute').length, { timeout: 10_000 })
      .toBeGreaterThan(0);
    const [call] = fx.grpc.callsTo(gid, '/workflow.Workflow/Execute');
    expect([...call!.body]).toEqual([0x0a, input.length, ...input]);
    expect(call!.metadata).toMatchObject({ 'dtm-op': 'transfer', 'dtm-branch_id': '00', 'dtm-trans_type': 'workflow' });
    // Progress recorded as bytes comes back as the same base64 (the gRPC API hands it to the client as bytes).
    const step = {
      gid,
      trans_type: 'workflow',
      branch_id: '01',
      op: 'action',
      status: 'succeed',
      bin_data: b64(reqGrpc(9)),
    };
    expect(await fx.dtm.post('/registerBranch', step)).toEqual(ok);
    const again = await fx.dtm.post('/prepareWorkflow', body);
    expect(again.body.progresses).toEqual([
      { status: 'succeed', bin_data: b64(reqGrpc(9)), branch_id: '01', op: 'action' },
    ]);
    const done = await fx.dtm.post('/submit', { gid, trans_type: 'workflow', req_extra: { status: 'succeed' } });
    expect(done).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed');
  });
});

describe('gRPC transactions: bad input is refused and nothing is written', () => {
  const refused = async (body: Record<string, unknown>, code: number, message: RegExp) => {
    const res = await fx.dtm.post('/submit', body);
    expect(res.status).toBe(code);
    expect(res.body.message).toMatch(message);
    expect((await fx.dtm.query(body.gid as string)).transaction).toBeNull();
  };

  it('refuses a url that is neither http(s) nor host:port/package.Service/Method', () =>
    refused(
      {
        ...grpcSaga(uniqueGid('bad'), [['TransOut', 'TransOutRevert']]),
        steps: [{ action: 'localhost/busi.Busi/TransOut', compensate: '' }],
      },
      422,
      /steps\[0\]\.action must be a gRPC target host:port\/package\.Service\/Method/,
    ));

  it('refuses a gRPC url on an http transaction', () =>
    refused(
      { ...grpcSaga(uniqueGid('bad'), [['TransOut', 'TransOutRevert']]), protocol: 'http' },
      422,
      /steps\[0\]\.action is not a valid URL/,
    ));

  it('refuses bin_payloads that are not base64, and payloads given twice', async () => {
    await refused(
      { ...grpcSaga(uniqueGid('bad'), [['TransOut', 'TransOutRevert']]), bin_payloads: ['not base64!'] },
      422,
      /bin_payloads/,
    );
    await refused(
      { ...grpcSaga(uniqueGid('bad'), [['TransOut', 'TransOutRevert']]), payloads: ['x'] },
      422,
      /payloads or bin_payloads, not both/,
    );
  });

  it('refuses branch headers that cannot be gRPC metadata', () =>
    refused(
      { ...grpcSaga(uniqueGid('bad'), [['TransOut', 'TransOutRevert']]), branch_headers: { 'grpc-timeout': '1S' } },
      422,
      /branch_headers\.grpc-timeout is not a/,
    ));

  it('refuses registerBranch with bin_data that is not base64, or with data and bin_data', async () => {
    const gid = uniqueGid('bad-reg');
    await fx.dtm.post('/prepare', { gid, trans_type: 'tcc', protocol: 'grpc' });
    const reg = { gid, trans_type: 'tcc', branch_id: '01', confirm: fx.grpc.url('TransOutConfirm'), cancel: '' };
    expect(await fx.dtm.post('/registerBranch', { ...reg, bin_data: '%%' })).toMatchObject({ status: 422 });
    expect(await fx.dtm.post('/registerBranch', { ...reg, bin_data: 'AA==', data: 'x' })).toMatchObject({
      status: 422,
    });
    expect((await fx.dtm.query(gid)).branches).toEqual([]);
  });
});
