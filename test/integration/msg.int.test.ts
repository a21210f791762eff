import { describe, expect, it } from 'vitest';
import type { BranchPeer } from '../peers/http-branch-peer';
import { liveMarker, uniqueGid, useTmFixture } from '../support/tm-harness';
import { countKeys } from '../support/redis-target';
import { pause } from '../support/wait';

const fx = useTmFixture();

const ok = { status: 200, body: { dtm_result: 'SUCCESS' } };
const called = (gid: string) =>
  fx.peer.calls.filter((c) => c.path.startsWith(`${gid}/`)).map((c) => c.path.slice(gid.length + 1));
const msg = (gid: string, n: number, extra: Record<string, unknown> = {}) => ({
  gid,
  trans_type: 'msg',
  steps: Array.from({ length: n }, (_, i) => ({ action: fx.peer.url(`${gid}/in${i}`) })),
  payloads: Array.from({ length: n }, (_, i) => JSON.stringify({ amount: 30, i })),
  query_prepared: fx.peer.url(`${gid}/QueryPrepared`),
  ...extra,
});

describe('two-phase messages', () => {
  it('when a message is submitted directly, then every step is delivered in order with its payload', async () => {
    const gid = uniqueGid('msg');
    expect(await fx.dtm.post('/submit', msg(gid, 2))).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed');
    expect(called(gid)).toEqual(['in0', 'in1']);
    const c = fx.peer.callsTo(`${gid}/in1`)[0]!;
    expect(c.query).toEqual({ gid, trans_type: 'msg', branch_id: '02', op: 'action' });
    expect(JSON.parse(c.body)).toEqual({ amount: 30, i: 1 });
  });

  it('when a message is prepared, then nothing is delivered until it is submitted', async () => {
    const gid = uniqueGid('msg-2pc');
    expect(await fx.dtm.post('/prepare', msg(gid, 1))).toEqual(ok);
    await liveMarker(fx.dtm, fx.peer);
    expect(called(gid)).toEqual([]);
    expect((await fx.dtm.query(gid)).transaction?.status).toBe('prepared');
    expect(await fx.dtm.post('/submit', msg(gid, 1))).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed');
    expect(called(gid)).toEqual(['in0']);
  });

  it('when a prepared message is aborted, then it fails and nothing is delivered', async () => {
    const gid = uniqueGid('msg-abort');
    await fx.dtm.post('/prepare', msg(gid, 1));
    expect(await fx.dtm.post('/abort', { gid, trans_type: 'msg' })).toEqual(ok);
    await fx.dtm.waitFor(gid, 'failed');
    await liveMarker(fx.dtm, fx.peer);
    expect(called(gid)).toEqual([]);
  });

  it('when a delivery fails, then it is retried until it succeeds and the message never rolls back', async () => {
    const gid = uniqueGid('msg-retry');
    fx.peer.script(`${gid}/in0`, [409, 500, 200]);
    await fx.dtm.post('/submit', msg(gid, 2, { retry_interval: 1 }));
    await fx.dtm.waitFor(gid, 'succeed', 10_000);
    expect(called(gid)).toEqual(['in0', 'in0', 'in0', 'in1']);
  });

  it('when custom_data has a delay, then delivery starts that many seconds after creation', async () => {
    const gid = uniqueGid('msg-delay');
    const t0 = Date.now();
    await fx.dtm.post('/submit', msg(gid, 1, { custom_data: JSON.stringify({ delay: 2 }) }));
    await fx.dtm.waitFor(gid, 'succeed', 10_000);
    expect(fx.peer.callsTo(`${gid}/in0`)[0]!.at - t0).toBeGreaterThanOrEqual(1_950);
  });

  it('when concurrent, then every step is delivered at once', async () => {
    const gid = uniqueGid('msg-conc');
    fx.peer.script(`${gid}/in0`, [{ status: 200, delayMs: 300 }]);
    fx.peer.script(`${gid}/in1`, [{ status: 200, delayMs: 300 }]);
    await fx.dtm.post('/submit', msg(gid, 2, { concurrent: true }));
    await fx.dtm.waitFor(gid, 'succeed');
    const [a, b] = [fx.peer.callsTo(`${gid}/in0`)[0]!.at, fx.peer.callsTo(`${gid}/in1`)[0]!.at];
    expect(Math.abs(a - b)).toBeLessThan(200);
  });
});

describe('check-back (reference §9 d)', () => {
  const prepared = async (label: string, answers: Parameters<BranchPeer['script']>[1]) => {
    const gid = uniqueGid(label);
    fx.peer.script(`${gid}/QueryPrepared`, answers);
    await fx.dtm.post('/prepare', msg(gid, 1, { timeout_to_fail: 1, retry_interval: 1 }));
    return gid;
  };

  it('when the AP never submits and the check-back answers SUCCESS, then the message is delivered', async () => {
    const gid = await prepared('cb-ok', [200]);
    await fx.dtm.waitFor(gid, 'succeed', 10_000);
    expect(called(gid)).toEqual(['QueryPrepared', 'in0']);
    const cb = fx.peer.callsTo(`${gid}/QueryPrepared`)[0]!;
    expect(cb.method).toBe('GET');
    expect(cb.query).toEqual({ gid, trans_type: 'msg', branch_id: '00', op: 'msg' });
  });

  it('when the check-back answers FAILURE, then the message fails and nothing is delivered', async () => {
    const gid = await prepared('cb-fail', [409]);
    await fx.dtm.waitFor(gid, 'failed', 10_000);
    await liveMarker(fx.dtm, fx.peer);
    expect(called(gid)).toEqual(['QueryPrepared']);
  });

  it('when the check-back answers ONGOING, then it asks again at the fixed interval', async () => {
    const gid = await prepared('cb-ongoing', [425, 425, 200]);
    await fx.dtm.waitFor(gid, 'succeed', 15_000);
    const times = fx.peer.callsTo(`${gid}/QueryPrepared`).map((c) => c.at);
    expect(times).toHaveLength(3);
    for (let i = 1; i < times.length; i++) {
      expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(950);
      expect(times[i]! - times[i - 1]!).toBeLessThan(1_900);
    }
    expect(called(gid).at(-1)).toBe('in0');
  });

  it('when the check-back errors, then it backs off and asks again', async () => {
    const gid = await prepared('cb-error', [500, 500, 200]);
    await fx.dtm.waitFor(gid, 'succeed', 15_000);
    const times = fx.peer.callsTo(`${gid}/QueryPrepared`).map((c) => c.at);
    expect(times).toHaveLength(3);
    expect(times[2]! - times[1]!).toBeGreaterThan((times[1]! - times[0]!) * 1.5);
  });

  it('when query_prepared is empty, then the check-back counts as SUCCESS (as DTM)', async () => {
    const gid = uniqueGid('cb-empty');
    await fx.dtm.post('/prepare', msg(gid, 1, { timeout_to_fail: 1, query_prepared: '' }));
    await fx.dtm.waitFor(gid, 'succeed', 10_000);
    expect(called(gid)).toEqual(['in0']);
  });

  it('when a submit races a check-back, then exactly one outcome wins and the losers are told', async () => {
    const results: { submit: number; status: string; delivered: number }[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async (_, k) => {
        const gid = uniqueGid(`race${k}`);
        // The check-back says FAILURE after a while; the submit lands somewhere around it.
        fx.peer.script(`${gid}/QueryPrepared`, [{ status: 409, delayMs: 150 }]);
        await fx.dtm.post('/prepare', msg(gid, 1, { timeout_to_fail: 1 }));
        await pause(950 + k * 40);
        const submit = await fx.dtm.post('/submit', msg(gid, 1));
        const tx = await fx.dtm.waitFor(gid, 'final', 10_000);
        await liveMarker(fx.dtm, fx.peer);
        results.push({
          submit: submit.status,
          status: String(tx.status),
          delivered: fx.peer.callsTo(`${gid}/in0`).length,
        });
      }),
    );
    // Exactly one outcome per message. Delivery is at-least-once: when the submit wins while the
    // check-back pass is still running, both drivers may deliver (DESIGN invariant 4), never more.
    for (const r of results) {
      if (r.submit === 200) {
        expect(r.status, JSON.stringify(results)).toBe('succeed');
        expect(r.delivered).toBeGreaterThanOrEqual(1);
        expect(r.delivered).toBeLessThanOrEqual(2);
      } else expect(r, JSON.stringify(results)).toMatchObject({ submit: 409, status: 'failed', delivered: 0 });
    }
  });
});

describe('topics', () => {
  it('when a message goes to a topic with two subscribers, then both get it as branches 01-01 and 01-02', async () => {
    const topic = uniqueGid('orders');
    const gid = uniqueGid('topic-msg');
    for (const who of ['billing', 'audit']) {
      expect(
        await fx.dtm.get(
          `/subscribe?topic=${topic}&url=${encodeURIComponent(fx.peer.url(`${gid}/${who}`))}&remark=${who}`,
        ),
      ).toEqual(ok);
    }
    const dup = await fx.dtm.get(`/subscribe?topic=${topic}&url=${encodeURIComponent(fx.peer.url(`${gid}/audit`))}`);
    expect(dup.status).toBe(422);
    expect(dup.body.message).toMatch(/this url exists/);
    await fx.dtm.post('/submit', {
      gid,
      trans_type: 'msg',
      steps: [{ action: `topic://${topic}` }],
      payloads: ['{"order":1}'],
    });
    await fx.dtm.waitFor(gid, 'succeed');
    expect(called(gid)).toEqual(['billing', 'audit']);
    expect(fx.peer.callsTo(`${gid}/audit`)[0]!.query.branch_id).toBe('01-02');
    expect((await fx.dtm.query(gid)).branches.map((b) => b.branch_id)).toEqual(['01-01', '01-02']);
  });

  it('when a subscriber leaves or the topic is deleted, then new messages see it at once', async () => {
    const topic = uniqueGid('stock');
    const gid1 = uniqueGid('t1');
    const gid2 = uniqueGid('t2');
    await fx.dtm.get(`/subscribe?topic=${topic}&url=${encodeURIComponent(fx.peer.url('shared/a'))}`);
    await fx.dtm.get(`/subscribe?topic=${topic}&url=${encodeURIComponent(fx.peer.url('shared/b'))}`);
    expect(await fx.dtm.get(`/unsubscribe?topic=${topic}&url=${encodeURIComponent(fx.peer.url('shared/a'))}`)).toEqual(
      ok,
    );
    await fx.dtm.post('/submit', {
      gid: gid1,
      trans_type: 'msg',
      steps: [{ action: `topic://${topic}` }],
      payloads: ['{}'],
    });
    await fx.dtm.waitFor(gid1, 'succeed');
    expect((await fx.dtm.query(gid1)).branches.map((b) => b.url)).toEqual([fx.peer.url('shared/b')]);
    const del = await fetch(`${fx.tm.url}/api/dtmsvr/topic/${topic}`, { method: 'DELETE' });
    expect(await del.json()).toEqual({ dtm_result: 'SUCCESS' });
    const res = await fx.dtm.post('/submit', {
      gid: gid2,
      trans_type: 'msg',
      steps: [{ action: `topic://${topic}` }],
      payloads: ['{}'],
    });
    expect(res.status).toBe(422);
    expect(res.body.message).toMatch(/topic not found/);
    expect((await fx.dtm.query(gid2)).transaction).toBeNull();
    expect((await fetch(`${fx.tm.url}/api/dtmsvr/topic/${topic}`, { method: 'DELETE' })).status).toBe(404);
    expect((await fx.dtm.get(`/unsubscribe?topic=${topic}&url=x`)).status).toBe(404);
    // The topic's history is in the log, for audits.
    const { events } = await fx.tm.infra.topics.read(`$topic:${topic}`);
    expect(events.map((e) => e.type)).toEqual([
      'TopicSubscribed',
      'TopicSubscribed',
      'TopicUnsubscribed',
      'TopicDeleted',
    ]);
  });

  it('when subscribe lacks a topic or url, then 400', async () => {
    expect((await fx.dtm.get('/subscribe?url=http://x/y')).status).toBe(400);
    expect((await fx.dtm.get('/subscribe?topic=t')).status).toBe(400);
    expect((await fx.dtm.get('/subscribe?topic=t&url=ftp://x')).status).toBe(422);
  });
});

describe('JSON-RPC', () => {
  const rpc = async (body: unknown) => {
    const r = await fetch(`${fx.tm.url}/api/json-rpc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    expect(r.status).toBe(200);
    return (await r.json()) as {
      jsonrpc: string;
      id: unknown;
      error: { code: number; message: string } | null;
      result: unknown;
    };
  };

  it('serves newGid, prepare, submit, abort and registerBranch as DTM does', async () => {
    const g = await rpc({ jsonrpc: '2.0', id: '1', method: 'newGid', params: {} });
    expect(g).toMatchObject({ jsonrpc: '2.0', id: '1', error: null, result: { dtm_result: 'SUCCESS' } });
    const gid = uniqueGid('rpc');
    expect(
      (await rpc({ jsonrpc: '2.0', id: 2, method: 'prepare', params: { gid, trans_type: 'tcc' } })).error,
    ).toBeNull();
    const reg = await rpc({
      jsonrpc: '2.0',
      id: 3,
      method: 'registerBranch',
      params: {
        gid,
        trans_type: 'tcc',
        branch_id: '01',
        data: '{}',
        confirm: fx.peer.url(`${gid}/confirm`),
        cancel: fx.peer.url(`${gid}/cancel`),
      },
    });
    expect(reg.error).toBeNull();
    expect((await rpc({ jsonrpc: '2.0', id: 4, method: 'submit', params: { gid, trans_type: 'tcc' } })).result).toEqual(
      { dtm_result: 'SUCCESS' },
    );
    await fx.dtm.waitFor(gid, 'succeed');
    expect(called(gid)).toEqual(['confirm']);
    const late = await rpc({ jsonrpc: '2.0', id: 5, method: 'abort', params: { gid, trans_type: 'tcc' } });
    expect(late.error).toMatchObject({ code: -32901 });
  });

  it('answers protocol errors with their codes', async () => {
    expect((await rpc('{"jsonrpc":')).error?.code).toBe(-32700);
    expect((await rpc({ jsonrpc: '1.0', id: 1, method: 'newGid' })).error?.code).toBe(-32600);
    expect((await rpc({ jsonrpc: '2.0', method: 'newGid' })).error?.code).toBe(-32600);
    expect((await rpc({ jsonrpc: '2.0', id: 1, method: 'query' })).error?.code).toBe(-32601);
    const bad = await rpc({ jsonrpc: '2.0', id: 1, method: 'submit', params: { trans_type: 'saga' } });
    expect(bad.error).toMatchObject({ code: -32602, message: 'gid is required' });
  });
});

describe('bad input for messages', () => {
  // The gid's own keys (stream, read model, lease, snapshot): counting every key of the prefix would flicker
  // as unrelated keys (alert markers, archive markers) expire. SCAN of every master: the TM may be on a cluster.
  const keyCount = () => countKeys(fx.tm.infra.redis, `${fx.tm.infra.config.prefix}:*:g1`);
  const cases: [string, unknown, number, RegExp][] = [
    [
      'a delay that is not a number',
      { gid: 'g1', trans_type: 'msg', steps: [], custom_data: '{"delay":"soon"}' },
      422,
      /custom_data.delay/,
    ],
    [
      'a query_prepared that is not a URL',
      { gid: 'g1', trans_type: 'msg', steps: [], query_prepared: 'nope' },
      422,
      /query_prepared is not a valid URL/,
    ],
    [
      'a topic step without a name',
      { gid: 'g1', trans_type: 'msg', steps: [{ action: 'topic://' }] },
      422,
      /names no topic/,
    ],
    [
      'a kafka step without brokers',
      { gid: 'g1', trans_type: 'msg', steps: [{ action: 'kafka://t' }] },
      422,
      /KAFKA_BROKERS/,
    ],
    [
      'a topic with no subscribers',
      { gid: 'g1', trans_type: 'msg', steps: [{ action: 'topic://nobody-listens' }] },
      422,
      /topic not found/,
    ],
  ];
  for (const [what, body, status, message] of cases) {
    it(`when a message has ${what}, then ${status} and nothing is written`, async () => {
      expect(await keyCount()).toBe(0);
      const res = await fx.dtm.post('/submit', body);
      expect(res.status).toBe(status);
      expect(String(res.body.message)).toMatch(message);
      expect(await keyCount()).toBe(0);
    });
  }
});
