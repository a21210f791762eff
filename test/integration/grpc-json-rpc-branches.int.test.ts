import { describe, expect, it } from 'vitest';
import { uniqueGid, useTmFixture } from '../support/tm-harness';
import { retriesOf } from '../peers/grpc-fixture';

// JSON-RPC branches (protocol json-rpc, reference §3.2): POST {"jsonrpc":"2.0","method":<?method=>,"params":{…payload,
// gid, trans_type, branch_id, op},"id":…}; error -32901 is FAILURE, -32902 ONGOING, any other error is retried.
const fx = useTmFixture({ backoffCapS: 8 });
const ok = { status: 200, body: { dtm_result: 'SUCCESS' } };

const rpcAnswer = (error: { code: number; message: string } | null) => ({
  status: 200,
  body: JSON.stringify({ jsonrpc: '2.0', id: 'x', result: error ? null : { dtm_result: 'SUCCESS' }, error }),
});

const rpcSaga = (gid: string, n: number, extra: Record<string, unknown> = {}) => ({
  gid,
  trans_type: 'saga',
  protocol: 'json-rpc',
  steps: Array.from({ length: n }, (_, i) => ({
    action: fx.peer.url(`${gid}/rpc${i}?method=TransIn${i}`),
    compensate: fx.peer.url(`${gid}/rpc${i}c?method=TransInRevert${i}`),
  })),
  payloads: Array.from({ length: n }, (_, i) => JSON.stringify({ amount: 30 + i })),
  retry_interval: 1,
  ...extra,
});

describe('JSON-RPC branches', () => {
  it('when the RM answers without error, then the call is a JSON-RPC request with the payload and dtm fields as params', async () => {
    const gid = uniqueGid('rpc-ok');
    expect(await fx.dtm.post('/submit', rpcSaga(gid, 2))).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed');
    const [call] = fx.peer.callsTo(`${gid}/rpc1`);
    expect(call!.method).toBe('POST');
    expect(call!.query).toEqual({ method: 'TransIn1' });
    expect(call!.headers['content-type']).toMatch(/application\/json/);
    const body = JSON.parse(call!.body) as Record<string, unknown>;
    expect(body).toEqual({
      jsonrpc: '2.0',
      method: 'TransIn1',
      params: { amount: 31, gid, trans_type: 'saga', branch_id: '02', op: 'action' },
      id: expect.any(String),
    });
  });

  it('when an action answers error -32901, then the saga fails and its done steps are compensated over JSON-RPC', async () => {
    const gid = uniqueGid('rpc-fail');
    fx.peer.script(`${gid}/rpc1`, [rpcAnswer({ code: -32901, message: 'insufficient balance' })]);
    expect(await fx.dtm.post('/submit', rpcSaga(gid, 2))).toEqual(ok);
    await fx.dtm.waitFor(gid, 'failed');
    const comp = fx.peer.callsTo(`${gid}/rpc0c`);
    expect(comp).toHaveLength(1);
    expect(JSON.parse(comp[0]!.body)).toMatchObject({ method: 'TransInRevert0', params: { op: 'compensate' } });
  });

  it('when an action answers error -32902, then it is retried at the fixed interval; another code backs off', async () => {
    const gid = uniqueGid('rpc-retry');
    fx.peer.script(`${gid}/rpc0`, [
      rpcAnswer({ code: -32902, message: 'later' }),
      rpcAnswer({ code: -32902, message: 'later' }),
      rpcAnswer({ code: -32603, message: 'internal' }),
      rpcAnswer({ code: -32000, message: 'server error' }),
      { status: 502, body: 'bad gateway' },
      rpcAnswer(null),
    ]);
    expect(await fx.dtm.post('/submit', rpcSaga(gid, 1))).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed', 30_000);
    const retries = await retriesOf(fx.dtm, gid, '01', 'action');
    expect(retries.map(({ outcome, delayMs }) => [outcome, delayMs])).toEqual([
      ['ongoing', 1_000],
      ['ongoing', 1_000],
      ['error', 1_000],
      ['error', 2_000],
      ['error', 4_000],
    ]);
    expect(retries[2]!.reason).toContain('JSON-RPC error -32603');
    expect(retries[4]!.reason).toContain('HTTP 502');
    expect(fx.peer.callsTo(`${gid}/rpc0c`)).toHaveLength(0);
  });

  it('when a compensation answers -32901, then it is retried: a second phase must succeed', async () => {
    const gid = uniqueGid('rpc-comp');
    fx.peer.script(`${gid}/rpc1`, [rpcAnswer({ code: -32901, message: 'no' })]);
    fx.peer.script(`${gid}/rpc0c`, [rpcAnswer({ code: -32901, message: 'no' }), rpcAnswer(null)]);
    expect(await fx.dtm.post('/submit', rpcSaga(gid, 2))).toEqual(ok);
    await fx.dtm.waitFor(gid, 'failed', 15_000);
    expect(fx.peer.callsTo(`${gid}/rpc0c`)).toHaveLength(2);
    expect((await retriesOf(fx.dtm, gid, '01', 'compensate')).map((r) => r.outcome)).toEqual(['error']);
  });

  it('when a json-rpc url names no method, then the branch is called as plain HTTP (as DTM does)', async () => {
    const gid = uniqueGid('rpc-plain');
    const body = { ...rpcSaga(gid, 1), steps: [{ action: fx.peer.url(`${gid}/plain`), compensate: '' }] };
    expect(await fx.dtm.post('/submit', body)).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed');
    const [call] = fx.peer.callsTo(`${gid}/plain`);
    expect(call!.query).toMatchObject({ gid, op: 'action', branch_id: '01' });
    expect(call!.body).toBe('{"amount":30}');
  });
});
