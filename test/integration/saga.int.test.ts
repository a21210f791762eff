import { describe, expect, it } from 'vitest';
import { liveMarker, sagaBody, uniqueGid, useTmFixture } from '../support/tm-harness';

const fx = useTmFixture();

const steps = (gid: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    action: fx.peer.url(`${gid}/a${i}`),
    compensate: fx.peer.url(`${gid}/c${i}`),
  }));
const pathsCalled = (gid: string) =>
  fx.peer.calls.filter((c) => c.path.startsWith(`${gid}/`)).map((c) => c.path.slice(gid.length + 1));

describe('saga over HTTP', () => {
  it('when both actions succeed, then the saga succeeds and no compensation runs', async () => {
    const gid = uniqueGid('ok');
    const res = await fx.dtm.post('/submit', sagaBody(gid, steps(gid, 2)));
    expect(res).toEqual({ status: 200, body: { dtm_result: 'SUCCESS' } });
    await fx.dtm.waitFor(gid, 'succeed');
    expect(pathsCalled(gid)).toEqual(['a0', 'a1']);
    const first = fx.peer.callsTo(`${gid}/a0`)[0]!;
    expect(first.method).toBe('POST');
    expect(first.query).toEqual({ gid, trans_type: 'saga', branch_id: '01', op: 'action' });
    expect(JSON.parse(first.body)).toEqual({ amount: 30, step: 0 });
    expect(first.headers['content-type']).toBe('application/json');
    const q = await fx.dtm.query(gid);
    expect(q.branches.map((b) => `${b.branch_id}/${b.op}/${b.status}`)).toEqual([
      '01/compensate/prepared',
      '01/action/succeed',
      '02/compensate/prepared',
      '02/action/succeed',
    ]);
    expect(q.transaction).toMatchObject({ gid, trans_type: 'saga', status: 'succeed' });
  });

  it('when the second action answers 409, then the actions are compensated in reverse order and the saga fails', async () => {
    const gid = uniqueGid('refused');
    fx.peer.script(`${gid}/a1`, [409]);
    await fx.dtm.post('/submit', sagaBody(gid, steps(gid, 2)));
    const tx = await fx.dtm.waitFor(gid, 'failed');
    expect(pathsCalled(gid)).toEqual(['a0', 'a1', 'c1', 'c0']);
    expect(tx.rollback_reason).toBe(`url:${fx.peer.url(`${gid}/a1`)} return failed: {"dtm_result":"FAILURE"} FAILURE`);
    expect(fx.peer.callsTo(`${gid}/c1`)[0]!.query).toMatchObject({ branch_id: '02', op: 'compensate' });
    const q = await fx.dtm.query(gid);
    expect(q.branches.map((b) => b.status)).toEqual(['succeed', 'succeed', 'succeed', 'failed']);
  });

  it('when a body says FAILURE with status 200, then it is a business failure (old DTM style)', async () => {
    const gid = uniqueGid('body-failure');
    fx.peer.script(`${gid}/a0`, [{ status: 200, body: '{"dtm_result":"FAILURE"}' }]);
    await fx.dtm.post('/submit', sagaBody(gid, steps(gid, 1)));
    await fx.dtm.waitFor(gid, 'failed');
    expect(pathsCalled(gid)).toEqual(['a0', 'c0']);
  });

  it('when a compensation errors, then it is retried until it succeeds', async () => {
    const gid = uniqueGid('comp-retry');
    fx.peer.script(`${gid}/a1`, [409]);
    fx.peer.script(`${gid}/c0`, [500, 409, 200]);
    await fx.dtm.post('/submit', sagaBody(gid, steps(gid, 2), { retry_interval: 1 }));
    await fx.dtm.waitFor(gid, 'failed', 20_000);
    expect(pathsCalled(gid)).toEqual(['a0', 'a1', 'c1', 'c0', 'c0', 'c0']);
  });

  it('when a step has empty URLs, then it counts as success without a call', async () => {
    const gid = uniqueGid('empty-url');
    await fx.dtm.post('/submit', sagaBody(gid, [{ action: '', compensate: '' }, ...steps(gid, 1)]));
    await fx.dtm.waitFor(gid, 'succeed');
    expect(pathsCalled(gid)).toEqual(['a0']);
  });

  it('when branch_headers are given, then every branch call carries them', async () => {
    const gid = uniqueGid('headers');
    await fx.dtm.post('/submit', sagaBody(gid, steps(gid, 1), { branch_headers: { 'x-tenant': 't1' } }));
    await fx.dtm.waitFor(gid, 'succeed');
    expect(fx.peer.callsTo(`${gid}/a0`)[0]!.headers['x-tenant']).toBe('t1');
  });

  it('when a step has an empty payload, then the branch is called with GET', async () => {
    const gid = uniqueGid('get');
    await fx.dtm.post('/submit', { gid, trans_type: 'saga', steps: steps(gid, 1), payloads: [''] });
    await fx.dtm.waitFor(gid, 'succeed');
    expect(fx.peer.callsTo(`${gid}/a0`)[0]!.method).toBe('GET');
  });
});

describe('concurrent saga', () => {
  it('when steps have orders, then independent steps overlap and dependants wait for their dependencies', async () => {
    const gid = uniqueGid('conc');
    // 0 and 1 concurrently (each takes 300 ms); 2 after both; 3 after 2.
    fx.peer.script(`${gid}/a0`, [{ status: 200, delayMs: 300 }]);
    fx.peer.script(`${gid}/a1`, [{ status: 200, delayMs: 300 }]);
    const body = sagaBody(gid, steps(gid, 4), {
      custom_data: JSON.stringify({ concurrent: true, orders: { 2: [0, 1], 3: [2] } }),
    });
    await fx.dtm.post('/submit', body);
    await fx.dtm.waitFor(gid, 'succeed');
    const t = (p: string) => fx.peer.callsTo(`${gid}/${p}`)[0]!.at;
    expect(Math.abs(t('a0') - t('a1'))).toBeLessThan(200);
    expect(t('a2')).toBeGreaterThanOrEqual(Math.max(t('a0'), t('a1')) + 290);
    expect(t('a3')).toBeGreaterThanOrEqual(t('a2'));
  });

  it('when a concurrent step fails, then dependants compensate before their dependencies', async () => {
    const gid = uniqueGid('conc-fail');
    fx.peer.script(`${gid}/a2`, [409]);
    const body = sagaBody(gid, steps(gid, 3), {
      custom_data: JSON.stringify({ concurrent: true, orders: { 2: [0, 1] } }),
    });
    await fx.dtm.post('/submit', body);
    await fx.dtm.waitFor(gid, 'failed');
    const order = pathsCalled(gid);
    expect(order.slice(0, 3).sort()).toEqual(['a0', 'a1', 'a2']);
    expect(order[3]).toBe('c2');
    expect(order.slice(4).sort()).toEqual(['c0', 'c1']);
  });
});

describe('timeout_to_fail and retry_limit', () => {
  it("when a saga passes its timeout_to_fail, then it rolls back with DTM's reason", async () => {
    const gid = uniqueGid('timeout');
    fx.peer.script(`${gid}/a1`, [425]);
    await fx.dtm.post('/submit', sagaBody(gid, steps(gid, 2), { timeout_to_fail: 2, retry_interval: 1 }));
    const tx = await fx.dtm.waitFor(gid, 'failed', 15_000);
    expect(tx.rollback_reason).toBe('Timeout after 2 seconds');
    const order = pathsCalled(gid);
    expect(order.slice(-2)).toEqual(['c1', 'c0']);
    expect(order.filter((p) => p === 'a1').length).toBeGreaterThanOrEqual(2);
  });

  it('when retries pass retry_limit, then the saga rolls back', async () => {
    const gid = uniqueGid('limit');
    fx.peer.script(`${gid}/a0`, [500]);
    await fx.dtm.post('/submit', sagaBody(gid, steps(gid, 2), { retry_limit: 2, retry_interval: 1 }));
    const tx = await fx.dtm.waitFor(gid, 'failed', 20_000);
    expect(tx.rollback_reason).toBe('RetryCount is greater than RetryLimit, RetryLimit: 2');
    expect(fx.peer.callsTo(`${gid}/a0`)).toHaveLength(3);
    expect(pathsCalled(gid).slice(-1)).toEqual(['c0']);
  });
});

describe('wait_result', () => {
  it('when the saga succeeds within the pass, then submit answers 200 after the branches ran', async () => {
    const gid = uniqueGid('wait-ok');
    const res = await fx.dtm.post('/submit', sagaBody(gid, steps(gid, 2), { wait_result: true }));
    expect(res).toEqual({ status: 200, body: { dtm_result: 'SUCCESS' } });
    expect(pathsCalled(gid)).toEqual(['a0', 'a1']);
    expect((await fx.dtm.query(gid)).transaction?.status).toBe('succeed');
  });

  it('when an action refuses, then submit answers 409 FAILURE with the reason, after the compensations', async () => {
    const gid = uniqueGid('wait-fail');
    fx.peer.script(`${gid}/a1`, [409]);
    const res = await fx.dtm.post('/submit', sagaBody(gid, steps(gid, 2), { wait_result: true }));
    expect(res.status).toBe(409);
    expect(res.body.dtm_result).toBe('FAILURE');
    expect(String(res.body.message)).toContain('return failed');
    expect(pathsCalled(gid)).toEqual(['a0', 'a1', 'c1', 'c0']);
  });
});

describe('wait_result while another pass drives the saga', () => {
  it('when a running saga is submitted again with wait_result, then the answer waits for the pass under way', async () => {
    const gid = uniqueGid('wait-busy');
    fx.peer.script(`${gid}/a0`, [{ status: 200, delayMs: 800 }]);
    const body = sagaBody(gid, steps(gid, 2));
    expect((await fx.dtm.post('/submit', body)).status).toBe(200);
    await expect.poll(() => fx.peer.callsTo(`${gid}/a0`).length, { timeout: 3_000 }).toBe(1);
    // The first pass holds the lease while a0 answers slowly; this submit must not answer 409 meanwhile.
    const res = await fx.dtm.post('/submit', { ...body, wait_result: true });
    expect(res).toEqual({ status: 200, body: { dtm_result: 'SUCCESS' } });
    expect(pathsCalled(gid)).toEqual(['a0', 'a1']);
  });
});

describe('submitting twice', () => {
  it('when a finished saga is submitted again, then the answer is 409 and nothing runs again', async () => {
    const gid = uniqueGid('again');
    await fx.dtm.post('/submit', sagaBody(gid, steps(gid, 1)));
    await fx.dtm.waitFor(gid, 'succeed');
    const res = await fx.dtm.post('/submit', sagaBody(gid, steps(gid, 1)));
    expect(res.status).toBe(409);
    expect(res.body).toEqual({ dtm_result: 'FAILURE', message: "current status 'succeed', cannot submit." });
    await liveMarker(fx.dtm, fx.peer);
    expect(pathsCalled(gid)).toEqual(['a0']);
  });
});
