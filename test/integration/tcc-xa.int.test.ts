import { describe, expect, it } from 'vitest';
import { uniqueGid, useTmFixture } from '../support/tm-harness';
import { countKeys } from '../support/redis-target';

const fx = useTmFixture();

const called = (gid: string) =>
  fx.peer.calls.filter((c) => c.path.startsWith(`${gid}/`)).map((c) => c.path.slice(gid.length + 1));
const ok = { status: 200, body: { dtm_result: 'SUCCESS' } };

const tccBranch = (gid: string, id: string, path = '/registerBranch') =>
  fx.dtm.post(path, {
    gid,
    trans_type: 'tcc',
    branch_id: id,
    data: JSON.stringify({ amount: 30, branch: id }),
    confirm: fx.peer.url(`${gid}/confirm${id}`),
    cancel: fx.peer.url(`${gid}/cancel${id}`),
  });

describe('TCC (reference §9 c)', () => {
  it('when the AP submits, then every branch is confirmed in reverse registration order with its data', async () => {
    const gid = uniqueGid('tcc');
    expect(await fx.dtm.post('/prepare', { gid, trans_type: 'tcc', protocol: '' })).toEqual(ok);
    expect(await tccBranch(gid, '01')).toEqual(ok);
    expect(await tccBranch(gid, '02', '/registerTccBranch')).toEqual(ok);
    expect(await fx.dtm.post('/submit', { gid, trans_type: 'tcc' })).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed');
    expect(called(gid)).toEqual(['confirm02', 'confirm01']);
    const c = fx.peer.callsTo(`${gid}/confirm02`)[0]!;
    expect(c.method).toBe('POST');
    expect(c.query).toEqual({ gid, trans_type: 'tcc', branch_id: '02', op: 'confirm' });
    expect(JSON.parse(c.body)).toEqual({ amount: 30, branch: '02' });
    const q = await fx.dtm.query(gid);
    expect(q.branches.map((b) => `${b.branch_id}/${b.op}/${b.status}`)).toEqual([
      '01/cancel/prepared',
      '01/confirm/succeed',
      '02/cancel/prepared',
      '02/confirm/succeed',
    ]);
  });

  it('when the AP aborts, then every branch is cancelled in reverse order, including one whose try never ran', async () => {
    const gid = uniqueGid('tcc-abort');
    await fx.dtm.post('/prepare', { gid, trans_type: 'tcc' });
    for (const id of ['01', '02', '03']) await tccBranch(gid, id);
    expect(await fx.dtm.post('/abort', { gid, trans_type: 'tcc', rollback_reason: 'try 03 said no FAILURE' })).toEqual(
      ok,
    );
    const tx = await fx.dtm.waitFor(gid, 'failed');
    expect(called(gid)).toEqual(['cancel03', 'cancel02', 'cancel01']);
    expect(tx.rollback_reason).toBe('try 03 said no FAILURE');
  });

  it('when the AP disappears before submit, then the timeout cancels the branches', async () => {
    const gid = uniqueGid('tcc-timeout');
    await fx.dtm.post('/prepare', { gid, trans_type: 'tcc', timeout_to_fail: 2 });
    await tccBranch(gid, '01');
    const tx = await fx.dtm.waitFor(gid, 'failed', 10_000);
    expect(tx.rollback_reason).toBe('Timeout after 2 seconds');
    expect(called(gid)).toEqual(['cancel01']);
    expect(Date.parse(String(tx.rollback_time)) - Date.parse(String(tx.create_time))).toBeGreaterThanOrEqual(2000);
  });

  it('when a confirm answers 409 or 500, then it is retried until it succeeds (second phase never fails)', async () => {
    const gid = uniqueGid('tcc-retry');
    fx.peer.script(`${gid}/confirm01`, [409, 500, 200]);
    await fx.dtm.post('/prepare', { gid, trans_type: 'tcc', retry_interval: 1 });
    await tccBranch(gid, '01');
    await fx.dtm.post('/submit', { gid, trans_type: 'tcc' });
    await fx.dtm.waitFor(gid, 'succeed', 10_000);
    expect(called(gid)).toEqual(['confirm01', 'confirm01', 'confirm01']);
  });

  it('when the same branch is registered again with the same values, then it is accepted once; other values are refused', async () => {
    const gid = uniqueGid('tcc-dup');
    await fx.dtm.post('/prepare', { gid, trans_type: 'tcc' });
    expect(await tccBranch(gid, '01')).toEqual(ok);
    expect(await tccBranch(gid, '01')).toEqual(ok);
    const other = await fx.dtm.post('/registerBranch', {
      gid,
      trans_type: 'tcc',
      branch_id: '01',
      data: 'x',
      confirm: '',
      cancel: '',
    });
    expect(other.status).toBe(422);
    expect(other.body.message).toMatch(/already registered with other values/);
    expect((await fx.dtm.query(gid)).branches).toHaveLength(2);
  });
});

describe('XA', () => {
  const xaBranch = (gid: string, id: string, path = '/registerBranch') =>
    fx.dtm.post(path, { gid, trans_type: 'xa', branch_id: id, url: fx.peer.url(`${gid}/xa${id}`) });

  it('when the AP submits, then branches are committed in forward order by POST with an empty body', async () => {
    const gid = uniqueGid('xa');
    await fx.dtm.post('/prepare', { gid, trans_type: 'xa' });
    expect(await xaBranch(gid, '01')).toEqual(ok);
    expect(await xaBranch(gid, '02', '/registerXaBranch')).toEqual(ok);
    await fx.dtm.post('/submit', { gid, trans_type: 'xa' });
    await fx.dtm.waitFor(gid, 'succeed');
    const calls = fx.peer.calls.filter((c) => c.path.startsWith(`${gid}/`));
    expect(calls.map((c) => `${c.path.slice(gid.length + 1)}:${c.query.op}:${c.method}:${c.body}`)).toEqual([
      'xa01:commit:POST:',
      'xa02:commit:POST:',
    ]);
    expect((await fx.dtm.query(gid)).branches.map((b) => `${b.branch_id}/${b.op}`)).toEqual([
      '01/rollback',
      '01/commit',
      '02/rollback',
      '02/commit',
    ]);
  });

  it('when the AP aborts, then branches are rolled back in forward order', async () => {
    const gid = uniqueGid('xa-abort');
    await fx.dtm.post('/prepare', { gid, trans_type: 'xa' });
    await xaBranch(gid, '01');
    await xaBranch(gid, '02');
    await fx.dtm.post('/abort', { gid, trans_type: 'xa' });
    await fx.dtm.waitFor(gid, 'failed');
    expect(
      fx.peer.calls.filter((c) => c.path.startsWith(`${gid}/`)).map((c) => `${c.query.branch_id}:${c.query.op}`),
    ).toEqual(['01:rollback', '02:rollback']);
  });

  it('when a prepared XA times out, then it is rolled back', async () => {
    const gid = uniqueGid('xa-timeout');
    await fx.dtm.post('/prepare', { gid, trans_type: 'xa', timeout_to_fail: 1 });
    await xaBranch(gid, '01');
    await fx.dtm.waitFor(gid, 'failed', 10_000);
    expect(fx.peer.callsTo(`${gid}/xa01`).map((c) => c.query.op)).toEqual(['rollback']);
  });
});

describe('illegal requests, answered as DTM does', () => {
  it('when a finished or submitted transaction is aborted, then 409', async () => {
    const gid = uniqueGid('abort-late');
    await fx.dtm.post('/prepare', { gid, trans_type: 'tcc' });
    await fx.dtm.post('/submit', { gid, trans_type: 'tcc' });
    await fx.dtm.waitFor(gid, 'succeed');
    const res = await fx.dtm.post('/abort', { gid, trans_type: 'tcc' });
    expect(res).toEqual({
      status: 409,
      body: { dtm_result: 'FAILURE', message: "trans type: 'tcc' current status 'succeed', cannot abort." },
    });
  });

  it('when a saga is aborted, then 409 (only tcc and xa, or a prepared msg, can be aborted)', async () => {
    const gid = uniqueGid('abort-saga');
    await fx.dtm.post('/submit', {
      gid,
      trans_type: 'saga',
      steps: [{ action: fx.peer.url(`${gid}/a`), compensate: '' }],
      payloads: [''],
    });
    expect((await fx.dtm.post('/abort', { gid, trans_type: 'saga' })).status).toBe(409);
  });

  it('when a branch is registered on a finished or unknown transaction, then 409', async () => {
    const gid = uniqueGid('reg-late');
    await fx.dtm.post('/prepare', { gid, trans_type: 'tcc' });
    await fx.dtm.post('/submit', { gid, trans_type: 'tcc' });
    await fx.dtm.waitFor(gid, 'succeed');
    const res = await tccBranch(gid, '01');
    expect(res.status).toBe(409);
    expect(res.body).toEqual({ dtm_result: 'FAILURE', message: `no trans with gid: ${gid} status: prepared found` });
    expect((await tccBranch(uniqueGid('nobody'), '01')).status).toBe(409);
  });

  it('when a submitted transaction is prepared again, then 409; while prepared, it is a no-op', async () => {
    const gid = uniqueGid('prep-twice');
    expect(await fx.dtm.post('/prepare', { gid, trans_type: 'tcc' })).toEqual(ok);
    expect(await fx.dtm.post('/prepare', { gid, trans_type: 'tcc' })).toEqual(ok);
    await fx.dtm.post('/submit', { gid, trans_type: 'tcc' });
    await fx.dtm.waitFor(gid, 'succeed');
    const res = await fx.dtm.post('/prepare', { gid, trans_type: 'tcc' });
    expect(res).toEqual({
      status: 409,
      body: { dtm_result: 'FAILURE', message: "current status 'succeed', cannot prepare." },
    });
  });

  it('when an unknown gid is aborted, then 404', async () => {
    expect((await fx.dtm.post('/abort', { gid: uniqueGid('nobody'), trans_type: 'tcc' })).status).toBe(404);
  });

  const keyCount = () => countKeys(fx.tm.infra.redis, `${fx.tm.infra.config.prefix}:*`);
  const bad: [string, string, unknown, number, RegExp][] = [
    [
      'a registerBranch value that is not a string',
      '/registerBranch',
      { gid: 'g', trans_type: 'tcc', branch_id: 1 },
      400,
      /branch_id must be a string/,
    ],
    [
      'a registerBranch without branch_id',
      '/registerBranch',
      { gid: 'g', trans_type: 'tcc' },
      400,
      /branch_id is required/,
    ],
    [
      'a registerBranch without trans_type',
      '/registerBranch',
      { gid: 'g', branch_id: '01' },
      400,
      /trans_type is required/,
    ],
    [
      'an xa registerBranch without url',
      '/registerBranch',
      { gid: 'g', trans_type: 'xa', branch_id: '01' },
      400,
      /url is required/,
    ],
    [
      'a registerBranch of a saga',
      '/registerBranch',
      { gid: 'g', trans_type: 'saga', branch_id: '01' },
      422,
      /does not take trans_type 'saga'/,
    ],
    [
      'a tcc confirm that is not a URL',
      '/registerBranch',
      { gid: 'g', trans_type: 'tcc', branch_id: '01', confirm: 'nope' },
      422,
      /confirm is not a valid URL/,
    ],
    ['an abort without trans_type', '/abort', { gid: 'g' }, 400, /trans_type is required/],
    ['an abort without gid', '/abort', { trans_type: 'tcc' }, 400, /gid is required/],
    [
      'a prepare with a bad option',
      '/prepare',
      { gid: 'g', trans_type: 'tcc', timeout_to_fail: 'soon' },
      400,
      /timeout_to_fail must be an integer/,
    ],
    [
      'a prepare of a workflow without its name',
      '/prepare',
      { gid: 'g', trans_type: 'workflow' },
      422,
      /workflow name is required/,
    ],
    ['a gid that starts with $', '/prepare', { gid: '$topic:x', trans_type: 'tcc' }, 422, /may not start with/],
  ];
  for (const [what, path, body, status, message] of bad) {
    it(`when ${what} is sent, then ${status} names the problem and nothing is written`, async () => {
      const before = await keyCount();
      const res = await fx.dtm.post(path, body);
      expect(res.status).toBe(status);
      expect(String(res.body.message)).toMatch(message);
      expect(await keyCount()).toBe(before);
    });
  }
});
