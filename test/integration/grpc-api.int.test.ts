import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, credentials, Metadata, status as Code } from '@grpc/grpc-js';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-node';
import { initTracing } from '@dtm-ts/telemetry';
import { grpcCall, useGrpcTmFixture } from '../support/grpc-tm';
import { uniqueGid } from '../support/tm-harness';

const exporter = new InMemorySpanExporter();
let stopTracing: () => Promise<void>;
beforeAll(() => {
  // Before the TM starts, so that its own initTracing finds the provider in place.
  stopTracing = initTracing({ serviceName: 'dtm-test', exporter: 'none', sampleRatio: 1 }, exporter);
});
const fx = useGrpcTmFixture({ maxBranches: 5, maxBodyBytes: 64 * 1024 });
afterAll(async () => {
  await stopTracing?.();
});

const b64 = (bytes: Uint8Array | string): string => Buffer.from(bytes).toString('base64');
const steps = (gid: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    action: fx.peer.url(`${gid}/a${i}`),
    compensate: fx.peer.url(`${gid}/c${i}`),
  }));

/** Every key of this TM's prefix: refused input must add none. */
const keyCount = async (): Promise<number> => (await fx.tm.infra.redis.keys(`${fx.tm.infra.config.prefix}:*`)).length;

describe('dtmgimp.Dtm, method by method', () => {
  it('NewGid answers a fresh 22-character gid', async () => {
    const a = await grpcCall(fx.stub, 'NewGid', {});
    const b = await grpcCall(fx.stub, 'NewGid', {});
    expect(a.err).toBeNull();
    expect(a.res?.Gid).toMatch(/^[2-9A-Za-z]{22}$/);
    expect(b.res?.Gid).not.toBe(a.res?.Gid);
  });

  it('Submit: a saga over gRPC whose branches are HTTP RMs runs to the end, stored as protocol grpc with base64 payloads', async () => {
    const gid = uniqueGid('grpc-saga');
    const payloads = [Uint8Array.from([0, 1, 2, 255]), Buffer.from('{"amount":30}')];
    const { err } = await grpcCall(fx.stub, 'Submit', {
      Gid: gid,
      TransType: 'saga',
      Steps: JSON.stringify(steps(gid, 2)),
      BinPayloads: payloads,
      TransOptions: { RetryInterval: 2, BranchHeaders: { 'x-tenant': 't1' } },
    });
    expect(err).toBeNull();
    await fx.dtm.waitFor(gid, 'succeed');
    const { transaction, branches } = await fx.dtm.query(gid);
    expect(transaction).toMatchObject({
      protocol: 'grpc',
      trans_type: 'saga',
      payloads: payloads.map(b64),
      retry_interval: 2,
      branch_headers: { 'x-tenant': 't1' },
    });
    expect(branches.map((b) => `${b.branch_id}/${b.op}/${b.status}`)).toEqual([
      '01/compensate/prepared',
      '01/action/succeed',
      '02/compensate/prepared',
      '02/action/succeed',
    ]);
    const order = fx.peer.calls.filter((c) => c.path.startsWith(`${gid}/`)).map((c) => c.path);
    expect(order).toEqual([`${gid}/a0`, `${gid}/a1`]);
    expect(fx.peer.callsTo(`${gid}/a0`)[0]!.headers['x-tenant']).toBe('t1');
  });

  it('Submit with WaitResult: an action that answers 409 makes the submit ABORTED after the rollback', async () => {
    const gid = uniqueGid('grpc-wait');
    fx.peer.script(`${gid}/a1`, [409]);
    const { err } = await grpcCall(fx.stub, 'Submit', {
      Gid: gid,
      TransType: 'saga',
      Steps: JSON.stringify(steps(gid, 2)),
      BinPayloads: [Buffer.from('p0'), Buffer.from('p1')],
      TransOptions: { WaitResult: true },
    });
    expect(err?.code).toBe(Code.ABORTED);
    expect(err?.details).toMatch(/FAILURE|failed/);
    expect((await fx.dtm.query(gid)).transaction?.status).toBe('failed');
    expect(fx.peer.callsTo(`${gid}/c0`)).toHaveLength(1);
  });

  it('Prepare, RegisterBranch (tcc Data confirm/cancel, BusiPayload), Submit: the TM confirms each branch', async () => {
    const gid = uniqueGid('grpc-tcc');
    expect((await grpcCall(fx.stub, 'Prepare', { Gid: gid, TransType: 'tcc', Steps: 'null' })).err).toBeNull();
    for (const id of ['01', '02']) {
      const r = await grpcCall(fx.stub, 'RegisterBranch', {
        Gid: gid,
        TransType: 'tcc',
        BranchID: id,
        BusiPayload: Buffer.from(`pay${id}`),
        Data: { confirm: fx.peer.url(`${gid}/confirm${id}`), cancel: fx.peer.url(`${gid}/cancel${id}`) },
      });
      expect(r.err).toBeNull();
    }
    expect((await fx.dtm.query(gid)).branches.map((b) => `${b.branch_id}/${b.op}`)).toEqual([
      '01/cancel',
      '01/confirm',
      '02/cancel',
      '02/confirm',
    ]);
    expect((await grpcCall(fx.stub, 'Submit', { Gid: gid, TransType: 'tcc' })).err).toBeNull();
    await fx.dtm.waitFor(gid, 'succeed');
    expect(fx.peer.callsTo(`${gid}/confirm01`)).toHaveLength(1);
    expect(fx.peer.callsTo(`${gid}/confirm02`)).toHaveLength(1);
    expect(fx.peer.callsTo(`${gid}/cancel01`)).toHaveLength(0);
  });

  it('Abort cancels a prepared tcc (RollbackReason kept); a Submit after it is ABORTED, as DTM answers FAILURE', async () => {
    const gid = uniqueGid('grpc-abort');
    await grpcCall(fx.stub, 'Prepare', { Gid: gid, TransType: 'tcc' });
    await grpcCall(fx.stub, 'RegisterBranch', {
      Gid: gid,
      TransType: 'tcc',
      BranchID: '01',
      Data: { confirm: fx.peer.url(`${gid}/confirm`), cancel: fx.peer.url(`${gid}/cancel`) },
    });
    const abort = await grpcCall(fx.stub, 'Abort', { Gid: gid, TransType: 'tcc', RollbackReason: 'try 02 said no' });
    expect(abort.err).toBeNull();
    const tx = await fx.dtm.waitFor(gid, 'failed');
    expect(tx.rollback_reason).toBe('try 02 said no');
    expect(fx.peer.callsTo(`${gid}/cancel`)).toHaveLength(1);
    const late = await grpcCall(fx.stub, 'Submit', { Gid: gid, TransType: 'tcc' });
    expect(late.err?.code).toBe(Code.ABORTED);
    expect(late.err?.details).toMatch(/current status 'failed'/);
    const register = await grpcCall(fx.stub, 'RegisterBranch', {
      Gid: gid,
      TransType: 'tcc',
      BranchID: '02',
      Data: {},
    });
    expect(register.err?.code).toBe(Code.ABORTED);
  });

  it('Prepare then Abort of a msg: it ends failed and nothing is delivered', async () => {
    const gid = uniqueGid('grpc-msg');
    const prepared = await grpcCall(fx.stub, 'Prepare', {
      Gid: gid,
      TransType: 'msg',
      Steps: JSON.stringify([{ action: fx.peer.url(`${gid}/in`) }]),
      BinPayloads: [Buffer.from('x')],
      QueryPrepared: '127.0.0.1:1/busi.Busi/QueryPrepared',
    });
    expect(prepared.err).toBeNull();
    expect((await fx.dtm.query(gid)).transaction).toMatchObject({
      status: 'prepared',
      query_prepared: '127.0.0.1:1/busi.Busi/QueryPrepared',
    });
    expect((await grpcCall(fx.stub, 'Abort', { Gid: gid, TransType: 'msg' })).err).toBeNull();
    await fx.dtm.waitFor(gid, 'failed');
    expect(fx.peer.callsTo(`${gid}/in`)).toHaveLength(0);
  });

  it('PrepareWorkflow, RegisterBranch (Data op/status, BusiPayload bytes), PrepareWorkflow again, Submit with ReqExtra', async () => {
    const gid = uniqueGid('grpc-wf');
    const wf = {
      Gid: gid,
      TransType: 'workflow',
      CustomedData: JSON.stringify({ name: 'transfer', data: b64('input') }),
      QueryPrepared: fx.peer.url(`${gid}/resume`),
      TransOptions: { RetryInterval: 60 },
    };
    const first = await grpcCall(fx.stub, 'PrepareWorkflow', wf);
    expect(first.err).toBeNull();
    expect(first.res).toMatchObject({ Transaction: { Gid: gid, Status: 'prepared' }, Progresses: [] });
    const bytes = Uint8Array.from([7, 0, 200]);
    const reg = await grpcCall(fx.stub, 'RegisterBranch', {
      Gid: gid,
      TransType: 'workflow',
      BranchID: '01',
      BusiPayload: bytes,
      Data: { op: 'action', status: 'succeed' },
    });
    expect(reg.err).toBeNull();
    const again = await grpcCall(fx.stub, 'PrepareWorkflow', wf);
    const progresses = again.res?.Progresses as { Status: string; BinData: Buffer; BranchID: string; Op: string }[];
    expect(progresses).toHaveLength(1);
    expect(progresses[0]).toMatchObject({ Status: 'succeed', BranchID: '01', Op: 'action' });
    expect([...progresses[0]!.BinData]).toEqual([...bytes]);
    const submit = await grpcCall(fx.stub, 'Submit', {
      Gid: gid,
      TransType: 'workflow',
      ReqExtra: { status: 'succeed', result: b64('done') },
    });
    expect(submit.err).toBeNull();
    expect((await fx.dtm.query(gid)).transaction?.status).toBe('succeed');
  });

  it('Subscribe, Unsubscribe, DeleteTopic: a msg to the topic reaches its subscribers; unknown ones are NOT_FOUND', async () => {
    const topic = uniqueGid('t');
    const url = fx.peer.url(`${topic}/sub`);
    expect((await grpcCall(fx.stub, 'Subscribe', { Topic: topic, URL: url, Remark: 'r' })).err).toBeNull();
    const grpcSub = await grpcCall(fx.stub, 'Subscribe', { Topic: topic, URL: '127.0.0.1:1/busi.Busi/Sub' });
    expect(grpcSub.err).toBeNull();
    const dup = await grpcCall(fx.stub, 'Subscribe', { Topic: topic, URL: url });
    expect(dup.err?.code).toBe(Code.INVALID_ARGUMENT);
    expect(dup.err?.details).toMatch(/this url exists/);
    expect((await grpcCall(fx.stub, 'Unsubscribe', { Topic: topic, URL: '127.0.0.1:1/busi.Busi/Sub' })).err).toBeNull();
    const gid = uniqueGid('grpc-topic');
    await grpcCall(fx.stub, 'Submit', {
      Gid: gid,
      TransType: 'msg',
      Steps: JSON.stringify([{ action: `topic://${topic}` }]),
      BinPayloads: [Buffer.from('m')],
    });
    await fx.dtm.waitFor(gid, 'succeed');
    expect(fx.peer.callsTo(`${topic}/sub`)).toHaveLength(1);
    const gone = await grpcCall(fx.stub, 'Unsubscribe', { Topic: topic, URL: 'h:1/x.Y/Z' });
    expect(gone.err?.code).toBe(Code.NOT_FOUND);
    expect((await grpcCall(fx.stub, 'DeleteTopic', { Topic: topic })).err).toBeNull();
    expect((await grpcCall(fx.stub, 'DeleteTopic', { Topic: topic })).err?.code).toBe(Code.NOT_FOUND);
  });

  it('Abort of an unknown gid is NOT_FOUND', async () => {
    const { err } = await grpcCall(fx.stub, 'Abort', { Gid: uniqueGid('nobody'), TransType: 'tcc' });
    expect(err?.code).toBe(Code.NOT_FOUND);
    expect(err?.details).toMatch(/no transaction with gid/);
  });
});

// The messages come from the API's validation (the same for HTTP and JSON-RPC); checked here: they name the field.
describe('bad input is INVALID_ARGUMENT naming the field, and nothing is written', () => {
  const saga = (over: Record<string, unknown>) => ({
    Gid: uniqueGid('bad'),
    TransType: 'saga',
    Steps: JSON.stringify([{ action: 'http://127.0.0.1:1/a', compensate: '' }]),
    ...over,
  });
  const cases: [string, string, object, RegExp][] = [
    ['no Gid', 'Submit', saga({ Gid: '' }), /gid/],
    ['no TransType', 'Prepare', saga({ TransType: '' }), /trans_type/],
    ['an unknown TransType', 'Submit', saga({ TransType: 'sagaa' }), /trans_type.*sagaa|sagaa.*trans_type/],
    ['Steps that are not JSON', 'Submit', saga({ Steps: '[{"action":' }), /Steps must be JSON text/],
    ['Steps that are not an array', 'Submit', saga({ Steps: '{"a":1}' }), /steps/],
    ['a step without action', 'Submit', saga({ Steps: '[{"compensate":""}]' }), /steps\[0\]\.action/],
    [
      'a step URL that is neither gRPC nor http',
      'Submit',
      saga({ Steps: JSON.stringify([{ action: 'rm-without-port/busi.Busi/In', compensate: '' }]) }),
      /steps\[0\]\.action/,
    ],
    [
      'more BinPayloads than steps',
      'Submit',
      saga({ BinPayloads: [Buffer.from('a'), Buffer.from('b')] }),
      /bin_payloads/,
    ],
    ['a negative TimeoutToFail', 'Submit', saga({ TransOptions: { TimeoutToFail: -5 } }), /timeout_to_fail/],
    [
      'too many steps',
      'Submit',
      saga({ Steps: JSON.stringify(Array(6).fill({ action: '', compensate: '' })) }),
      /steps/,
    ],
    [
      'a saga custom_data with a cycle',
      'Submit',
      saga({
        Steps: JSON.stringify([{ action: '' }, { action: '' }]),
        CustomedData: '{"concurrent":true,"orders":{"0":[1],"1":[0]}}',
      }),
      /cycle/,
    ],
    ['PrepareWorkflow of a saga', 'PrepareWorkflow', saga({}), /workflow/],
    ['Abort without TransType', 'Abort', { Gid: 'x' }, /trans_type/],
    ['RegisterBranch without BranchID', 'RegisterBranch', { Gid: 'x', TransType: 'tcc' }, /branch_id/],
    [
      'RegisterBranch with a bad confirm URL',
      'RegisterBranch',
      { Gid: 'x', TransType: 'tcc', BranchID: '01', Data: { confirm: 'ftp://x', cancel: '' } },
      /confirm/,
    ],
    ['Subscribe without Topic', 'Subscribe', { URL: 'h:1/a.B/C' }, /topic/],
    ['Subscribe without URL', 'Subscribe', { Topic: 'ok' }, /url/],
  ];
  it.each(cases)('%s', async (_name, method, req, message) => {
    const before = await keyCount();
    const { err } = await grpcCall(fx.stub, method, req);
    expect(err?.code).toBe(Code.INVALID_ARGUMENT);
    expect(err?.details).toMatch(message);
    expect(await keyCount()).toBe(before);
  });

  it("a step at the TM's own gRPC port is refused by the outbound policy, and nothing is written", async () => {
    const before = await keyCount();
    const own = `${fx.target}/dtmgimp.Dtm/NewGid`;
    const { err } = await grpcCall(
      fx.stub,
      'Submit',
      saga({ Steps: JSON.stringify([{ action: own, compensate: '' }]) }),
    );
    expect(err?.code).toBe(Code.INVALID_ARGUMENT);
    expect(err?.details).toMatch(/outbound URL refused/);
    expect(await keyCount()).toBe(before);
  });

  it('a message over MAX_BODY_BYTES is RESOURCE_EXHAUSTED and writes nothing', async () => {
    const before = await keyCount();
    const { err } = await grpcCall(fx.stub, 'Submit', saga({ CustomedData: 'x'.repeat(70_000) }));
    expect(err?.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(await keyCount()).toBe(before);
  });
});

/** Protobuf wire encoding by hand, so the field numbers are checked against DTM's, not against our own .proto. */
const varint = (n: number): number[] => {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
};
const field = (no: number, bytes: Uint8Array | string): number[] => {
  const b = typeof bytes === 'string' ? Buffer.from(bytes) : bytes;
  return [...varint((no << 3) | 2), ...varint(b.length), ...b];
};
const intField = (no: number, n: number): number[] => [...varint(no << 3), ...varint(n)];

describe('wire compatibility', () => {
  it("when a DtmRequest is encoded by hand with DTM's field numbers, then the TM reads every field", async () => {
    const gid = uniqueGid('grpc-raw');
    const header = Buffer.from([...field(1, 'x-raw'), ...field(2, 'yes')]); // map entry: key 1, value 2
    const options = Buffer.from([
      ...intField(1, 1),
      ...intField(3, 4),
      ...field(5, header),
      ...intField(6, 9),
      ...intField(7, 2),
    ]);
    const message = Buffer.from([
      ...field(1, gid), // Gid
      ...field(2, 'saga'), // TransType
      ...field(3, options), // TransOptions: WaitResult, RetryInterval, BranchHeaders, RequestTimeout, RetryLimit
      ...field(5, Uint8Array.from([9, 8])), // BinPayloads[0]
      ...field(5, Uint8Array.from([7])), // BinPayloads[1]
      ...field(7, JSON.stringify(steps(gid, 2))), // Steps
    ]);
    const raw = new Client(fx.target, credentials.createInsecure());
    try {
      const reply = await new Promise<Buffer>((resolve, reject) =>
        raw.makeUnaryRequest(
          '/dtmgimp.Dtm/Submit',
          (b: Buffer) => b,
          (b: Buffer) => b,
          message,
          new Metadata(),
          {},
          (err, res) => (err ? reject(err) : resolve(res!)),
        ),
      );
      expect(reply.length).toBe(0); // google.protobuf.Empty
      // WaitResult: the submit answered after the pass, so the saga is done already.
      expect((await fx.dtm.query(gid)).transaction).toMatchObject({
        status: 'succeed',
        protocol: 'grpc',
        payloads: [b64(Uint8Array.from([9, 8])), b64(Uint8Array.from([7]))],
        retry_interval: 4,
        request_timeout: 9,
        retry_limit: 2,
        branch_headers: { 'x-raw': 'yes' },
      });
      const gidReply = await new Promise<Buffer>((resolve, reject) =>
        raw.makeUnaryRequest(
          '/dtmgimp.Dtm/NewGid',
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.alloc(0),
          new Metadata(),
          {},
          (err, res) => (err ? reject(err) : resolve(res!)),
        ),
      );
      expect([...gidReply.subarray(0, 2)]).toEqual([0x0a, 22]); // field 1, length 22
    } finally {
      raw.close();
    }
  });
});

describe('observability', () => {
  it("when the AP sends a traceparent in the metadata, then the gRPC request's span continues it and the whole saga joins that trace", async () => {
    const gid = uniqueGid('grpc-trace');
    const apTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const md = new Metadata();
    md.set('traceparent', `00-${apTrace}-00f067aa0ba902b7-01`);
    const { err } = await grpcCall(
      fx.stub,
      'Submit',
      { Gid: gid, TransType: 'saga', Steps: JSON.stringify(steps(gid, 1)), BinPayloads: [Buffer.from('p')] },
      md,
    );
    expect(err).toBeNull();
    await fx.dtm.waitFor(gid, 'succeed');
    const inTrace = () => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === apTrace);
    await expect.poll(() => inTrace().some((s) => s.name === 'dtm.branch action')).toBe(true);
    const server = inTrace().find((s) => s.name === 'dtmgimp.Dtm/Submit')!;
    expect(server.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(server.attributes).toMatchObject({
      'rpc.system': 'grpc',
      'rpc.method': 'Submit',
      'rpc.grpc.status_code': 0,
    });
    // The pass span ends after the branch answer is recorded, a moment after the branch span.
    await expect.poll(() => inTrace().map((s) => s.name)).toContain('dtm.pass');
    expect(String(fx.peer.callsTo(`${gid}/a0`)[0]!.headers.traceparent).split('-')[1]).toBe(apTrace);
  });

  it('when calls are made, then /api/metrics counts them with type grpc, api and ok/fail', async () => {
    await grpcCall(fx.stub, 'NewGid', {});
    await grpcCall(fx.stub, 'Abort', { Gid: uniqueGid('m'), TransType: 'tcc' });
    const text = await (await fetch(`${fx.tm.url}/api/metrics`)).text();
    expect(text).toMatch(/dtm_server_process_total\{type="grpc",api="newgid",status="ok"\} [1-9]/);
    expect(text).toMatch(/dtm_server_process_total\{type="grpc",api="abort",status="fail"\} [1-9]/);
    expect(text).toMatch(/dtm_server_response_duration_count\{type="grpc",api="newgid"\} [1-9]/);
  });
});
