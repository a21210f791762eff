import { describe, expect, it } from 'vitest';
import { sagaBody, uniqueGid, useTmFixture } from '../support/tm-harness';
import { pause } from '../support/wait';

const fx = useTmFixture({ maxBodyBytes: 64 * 1024, maxBranches: 5 });

const steps = (gid: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    action: fx.peer.url(`${gid}/a${i}`),
    compensate: fx.peer.url(`${gid}/c${i}`),
  }));

/** Every key of this TM's prefix: bad input must add none. */
const keyCount = async (): Promise<number> => (await fx.tm.infra.redis.keys(`${fx.tm.infra.config.prefix}:*`)).length;

describe('bad input changes nothing', () => {
  const cases: [string, () => Promise<{ status: number; body: Record<string, unknown> }>, number, RegExp][] = [
    ['missing gid', () => fx.dtm.post('/submit', { trans_type: 'saga', steps: [] }), 400, /gid is required/],
    [
      'gid of the wrong type',
      () => fx.dtm.post('/submit', { gid: 7, trans_type: 'saga' }),
      400,
      /gid must be a string/,
    ],
    ['missing trans_type', () => fx.dtm.post('/submit', { gid: uniqueGid('x') }), 400, /trans_type is required/],
    [
      'unknown trans_type',
      () => fx.dtm.post('/submit', { gid: uniqueGid('x'), trans_type: 'sagaa' }),
      422,
      /trans_type is unknown: 'sagaa'/,
    ],
    ['malformed JSON', () => fx.dtm.postRaw('/submit', '{"gid": "x", '), 400, /malformed JSON/],
    ['a JSON array', () => fx.dtm.postRaw('/submit', '[1,2]'), 400, /must be a JSON object/],
    [
      'an oversized body',
      () => fx.dtm.postRaw('/submit', JSON.stringify({ gid: 'big', trans_type: 'saga', pad: 'x'.repeat(70_000) })),
      413,
      /larger than 65536 bytes/,
    ],
    [
      'steps that are not an array',
      () => fx.dtm.post('/submit', { gid: uniqueGid('x'), trans_type: 'saga', steps: {} }),
      400,
      /steps must be an array/,
    ],
    [
      'a step without action',
      () => fx.dtm.post('/submit', { gid: uniqueGid('x'), trans_type: 'saga', steps: [{ compensate: '' }] }),
      400,
      /steps\[0\]\.action is required/,
    ],
    [
      'a step URL that is not http',
      () =>
        fx.dtm.post('/submit', {
          gid: uniqueGid('x'),
          trans_type: 'saga',
          steps: [{ action: 'ftp://x/y', compensate: '' }],
        }),
      422,
      /must be an http\(s\) URL/,
    ],
    [
      'a numeric option of the wrong type',
      () => fx.dtm.post('/submit', { ...sagaBody(uniqueGid('x'), []), timeout_to_fail: '5' }),
      400,
      /timeout_to_fail must be an integer/,
    ],
    [
      'a negative option',
      () => fx.dtm.post('/submit', { ...sagaBody(uniqueGid('x'), []), retry_interval: -1 }),
      422,
      /retry_interval must be between/,
    ],
    [
      'too many steps',
      () => fx.dtm.post('/submit', sagaBody(uniqueGid('x'), Array(6).fill({ action: '', compensate: '' }))),
      422,
      /too many steps: 6 > 5/,
    ],
    [
      'more payloads than steps',
      () => fx.dtm.post('/submit', { gid: uniqueGid('x'), trans_type: 'saga', steps: [], payloads: ['a'] }),
      422,
      /payloads has 1 entries for 0 steps/,
    ],
    [
      'orders with a cycle',
      () =>
        fx.dtm.post(
          '/submit',
          sagaBody(uniqueGid('x'), Array(2).fill({ action: '', compensate: '' }), {
            custom_data: '{"concurrent":true,"orders":{"0":[1],"1":[0]}}',
          }),
        ),
      422,
      /cycle/,
    ],
    [
      'orders naming a missing step',
      () =>
        fx.dtm.post(
          '/submit',
          sagaBody(uniqueGid('x'), Array(2).fill({ action: '', compensate: '' }), {
            custom_data: '{"concurrent":true,"orders":{"1":[5]}}',
          }),
        ),
      422,
      /other step indexes below 2/,
    ],
    [
      'custom_data that is not JSON',
      () => fx.dtm.post('/submit', sagaBody(uniqueGid('x'), [], { custom_data: '{' })),
      400,
      /custom_data must be JSON text/,
    ],
    [
      'branch_headers with a number',
      () => fx.dtm.post('/submit', sagaBody(uniqueGid('x'), [], { branch_headers: { a: 1 } })),
      400,
      /branch_headers\.a must be a string/,
    ],
    [
      'an unknown protocol',
      () => fx.dtm.post('/submit', sagaBody(uniqueGid('x'), [], { protocol: 'soap' })),
      422,
      /protocol 'soap' is not supported/,
    ],
    ['forceStop without gid', () => fx.dtm.post('/forceStop', {}), 400, /gid is required/],
    [
      'forceStop of an unknown gid',
      () => fx.dtm.post('/forceStop', { gid: uniqueGid('nobody') }),
      404,
      /no transaction with gid/,
    ],
    [
      'resetNextCronTime of an unknown gid',
      () => fx.dtm.post('/resetNextCronTime', { gid: uniqueGid('nobody') }),
      404,
      /no transaction with gid/,
    ],
    ['query without gid', () => fx.dtm.get('/query'), 400, /no gid specified/],
    ['all with a bad limit', () => fx.dtm.get('/all?limit=0'), 400, /limit must be an integer/],
  ];
  for (const [what, send, status, message] of cases) {
    it(`when a request has ${what}, then it gets ${status} naming the problem and nothing is written`, async () => {
      const before = await keyCount();
      const res = await send();
      expect(res.status).toBe(status);
      expect(String(res.body.message)).toMatch(message);
      expect(res.body).not.toHaveProperty('dtm_result');
      expect(await keyCount()).toBe(before);
    });
  }
});

describe('endpoints', () => {
  it('answers ping, version and newGid as DTM does', async () => {
    expect(await (await fetch(`${fx.tm.url}/api/ping`)).json()).toEqual({ msg: 'pong' });
    expect((await fx.dtm.get('/version')).body.version).toMatch(/^v1\./);
    const a = await fx.dtm.get('/newGid');
    const b = await fx.dtm.get('/newGid');
    expect(a.body.dtm_result).toBe('SUCCESS');
    expect(String(a.body.gid)).toMatch(/^[A-Za-z0-9]{22}$/);
    expect(a.body.gid).not.toBe(b.body.gid);
  });

  it('when TCC branches are registered past MAX_BRANCHES, then 422 naming the bound and the transaction keeps its branches', async () => {
    const gid = uniqueGid('many');
    expect((await fx.dtm.post('/prepare', { gid, trans_type: 'tcc' })).status).toBe(200);
    const register = (id: number) =>
      fx.dtm.post('/registerBranch', {
        gid,
        trans_type: 'tcc',
        branch_id: String(id).padStart(2, '0'),
        confirm: fx.peer.url(`${gid}/confirm`),
        cancel: fx.peer.url(`${gid}/cancel`),
        data: '{}',
      });
    for (let id = 1; id <= 5; id++) expect((await register(id)).status).toBe(200);
    const events = (await fx.tm.infra.log.read(gid)).events.length;
    const refused = await register(6);
    expect(refused.status).toBe(422);
    expect(String(refused.body.message)).toMatch(/too many branches: 6 > 5 \(MAX_BRANCHES\)/);
    expect((await fx.tm.infra.log.read(gid)).events.length).toBe(events);
    expect((await fx.dtm.query(gid)).branches).toHaveLength(10);
  });

  it('answers an unknown gid with a null transaction, as DTM does', async () => {
    expect(await fx.dtm.query(uniqueGid('unknown'))).toEqual({ transaction: null, branches: [] });
  });

  it('when a saga is force stopped, then it fails at once and no compensation runs', async () => {
    const gid = uniqueGid('force');
    fx.peer.script(`${gid}/a0`, [425]);
    await fx.dtm.post('/submit', sagaBody(gid, steps(gid, 1), { retry_interval: 30 }));
    await expect.poll(() => fx.peer.callsTo(`${gid}/a0`).length, { timeout: 5_000 }).toBe(1);
    expect(await fx.dtm.post('/forceStop', { gid })).toEqual({ status: 200, body: { dtm_result: 'SUCCESS' } });
    const tx = await fx.dtm.waitFor(gid, 'failed', 2_000);
    expect(tx.rollback_reason).toBe('force stopped');
    const again = await fx.dtm.post('/forceStop', { gid });
    expect(again.status).toBe(409);
    expect(again.body.dtm_result).toBe('FAILURE');
    expect(fx.peer.callsTo(`${gid}/c0`)).toHaveLength(0);
  });

  it('lists transactions newest first with cursor paging and filters', async () => {
    const label = uniqueGid('list');
    const gids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const gid = `${label}-${i}`;
      gids.push(gid);
      if (i === 2) fx.peer.script(`${gid}/a0`, [409]);
      await fx.dtm.post('/submit', sagaBody(gid, steps(gid, 1), { wait_result: true }));
      await pause(5); // distinct create times: the order is newest first
    }
    const mine = (list: Record<string, unknown>[]) =>
      list.filter((t) => String(t.gid).startsWith(label)).map((t) => t.gid);
    await expect
      .poll(async () => mine((await fx.dtm.get('/all?limit=1000')).body.transactions as never).length, {
        timeout: 5_000,
      })
      .toBe(5);
    // Page through with limit 2: every one of ours appears once, newest first.
    const seen: unknown[] = [];
    let position = '';
    for (let page = 0; page < 50; page++) {
      const res = await fx.dtm.get(`/all?limit=2&position=${encodeURIComponent(position)}`);
      expect((res.body.transactions as unknown[]).length).toBeLessThanOrEqual(2);
      seen.push(...mine(res.body.transactions as never));
      position = String(res.body.next_position);
      if (position === '') break;
    }
    expect(seen).toEqual([...gids].reverse());
    const failed = await fx.dtm.get('/all?status=failed&limit=1000');
    expect(mine(failed.body.transactions as never)).toEqual([gids[2]]);
    const none = await fx.dtm.get(`/all?limit=1000&transType=tcc`);
    expect(mine(none.body.transactions as never)).toEqual([]);
    const start = Date.now() + 60_000;
    const future = await fx.dtm.get(`/all?limit=1000&createTimeStart=${start}`);
    expect(mine(future.body.transactions as never)).toEqual([]);
    const one = await fx.dtm.get(`/all?gid=${gids[1]}`);
    expect(one.body).toMatchObject({ transactions: [{ gid: gids[1], status: 'succeed' }], next_position: '' });
  });

  it('accepts keys in any case and a body sent without a JSON content type, as Go clients and curl do', async () => {
    const gid = uniqueGid('case');
    const res = await fx.dtm.postRaw(
      '/submit',
      JSON.stringify({ GID: gid, Trans_Type: 'saga', Steps: steps(gid, 1), Payloads: ['{}'] }),
      'text/plain',
    );
    expect(res.status).toBe(200);
    await fx.dtm.waitFor(gid, 'succeed');
  });
});
