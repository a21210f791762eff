import { describe, expect, it } from 'vitest';
import { RedisReadModel } from '@dtm-ts/adapters';
import { rebuildReadModel, verifyReadModel } from '@dtm-ts/worker';
import { sagaBody, uniqueGid, useTmFixture } from '../support/tm-harness';

const fx = useTmFixture();

const allPages = async (query: string): Promise<unknown[]> => {
  const out: unknown[] = [];
  let position = '';
  for (let i = 0; i < 100; i++) {
    const res = await fx.dtm.get(`/all?limit=7&${query}&position=${encodeURIComponent(position)}`);
    out.push(...(res.body.transactions as unknown[]));
    position = String(res.body.next_position);
    if (!position) return out;
  }
  throw new Error('too many pages');
};

describe('audit and rebuild', () => {
  it('when the read model is dropped and rebuilt from the log, then /all answers exactly as before', async () => {
    const gids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const gid = uniqueGid(`rb${i}`);
      gids.push(gid);
      const steps = [
        { action: fx.peer.url(`${gid}/a0`), compensate: fx.peer.url(`${gid}/c0`) },
        { action: fx.peer.url(`${gid}/a1`), compensate: fx.peer.url(`${gid}/c1`) },
      ];
      if (i % 3 === 0) fx.peer.script(`${gid}/a1`, [409]);
      await fx.dtm.post('/submit', sagaBody(gid, steps));
    }
    for (const gid of gids) await fx.dtm.waitFor(gid, 'final');
    // The projector is asynchronous: wait until it shows every final status.
    await expect
      .poll(
        async () =>
          (await allPages('')).filter((t) => ['succeed', 'failed'].includes(String((t as { status: string }).status)))
            .length,
        {
          timeout: 5_000,
        },
      )
      .toBe(20);
    const before = { all: await allPages(''), failed: await allPages('status=failed') };
    expect(before.failed).toHaveLength(7);

    const rmKeys = await fx.tm.infra.redis.keys(`${fx.tm.infra.config.prefix}:*:rm*`);
    expect(rmKeys.length).toBeGreaterThan(0);
    await fx.tm.infra.redis.del(...rmKeys);
    expect(await allPages('')).toEqual([]);

    const rebuilt = await rebuildReadModel({
      log: fx.tm.infra.log,
      feed: fx.tm.infra.log,
      readModel: fx.tm.infra.readModel,
      requestTimeoutMs: 3000,
      policy: fx.tm.infra.policy,
    });
    expect(rebuilt).toBeGreaterThanOrEqual(20);
    expect({ all: await allPages(''), failed: await allPages('status=failed') }).toEqual(before);
  });

  it('when the live read model is verified against a rebuild from the log, then it matches, and a damaged one does not', async () => {
    const gids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const gid = uniqueGid(`vf${i}`);
      gids.push(gid);
      if (i % 4 === 0) fx.peer.script(`${gid}/a0`, [409]);
      await fx.dtm.post(
        '/submit',
        sagaBody(gid, [{ action: fx.peer.url(`${gid}/a0`), compensate: fx.peer.url(`${gid}/c0`) }]),
      );
    }
    for (const gid of gids) await fx.dtm.waitFor(gid, 'final');
    const shape = { prefix: `${fx.tm.infra.config.prefix}-verify`, partitions: fx.tm.infra.config.partitions };
    const deps = {
      log: fx.tm.infra.log,
      feed: fx.tm.infra.log,
      readModel: fx.tm.infra.readModel,
      requestTimeoutMs: 3000,
      policy: fx.tm.infra.policy,
    };
    await expect
      .poll(
        async () =>
          (
            await verifyReadModel({
              ...deps,
              fresh: new RedisReadModel(fx.tm.infra.redis, { ...shape, prefix: `${shape.prefix}-${Math.random()}` }),
            })
          ).differences.length,
        { timeout: 5_000 },
      )
      .toBe(0);
    const ok = await verifyReadModel({
      ...deps,
      fresh: new RedisReadModel(fx.tm.infra.redis, { ...shape, prefix: `${shape.prefix}-a` }),
    });
    expect(ok.compared).toBeGreaterThanOrEqual(12);
    expect(ok.differences).toEqual([]);
    // Damage the live one: a transaction disappears from it.
    const victim = gids[3]!;
    const key = (await fx.tm.infra.redis.keys(`${fx.tm.infra.config.prefix}:*:rm:${victim}`))[0]!;
    await fx.tm.infra.redis.hset(
      key,
      'j',
      JSON.stringify({ gid: victim, transType: 'saga', status: 'prepared', createTime: 0, record: {} }),
    );
    const bad = await verifyReadModel({
      ...deps,
      fresh: new RedisReadModel(fx.tm.infra.redis, { ...shape, prefix: `${shape.prefix}-b` }),
    });
    expect(bad.differences.map((d) => d.gid)).toEqual([victim]);
  });

  it('when a saga rolled back, then its stream tells every step with times, outcomes and reasons', async () => {
    const gid = uniqueGid('audit');
    fx.peer.script(`${gid}/a1`, [500, 409]);
    const steps = [
      { action: fx.peer.url(`${gid}/a0`), compensate: fx.peer.url(`${gid}/c0`) },
      { action: fx.peer.url(`${gid}/a1`), compensate: fx.peer.url(`${gid}/c1`) },
    ];
    await fx.dtm.post('/submit', sagaBody(gid, steps, { retry_interval: 1 }));
    await fx.dtm.waitFor(gid, 'failed', 10_000);
    const { events } = await fx.tm.infra.log.read(gid);
    expect(events.map((e) => e.type)).toEqual([
      'TransactionPrepared',
      'TransactionSubmitted',
      'BranchSucceeded',
      'BranchRetryScheduled',
      'BranchFailed',
      'TransactionAborting',
      'BranchSucceeded',
      'BranchSucceeded',
      'TransactionFailed',
    ]);
    const retry = events[3]!;
    expect(retry.type === 'BranchRetryScheduled' && retry.data).toMatchObject({
      branchId: '02',
      op: 'action',
      outcome: 'error',
    });
    expect(retry.type === 'BranchRetryScheduled' && retry.data.detail).toContain('HTTP 500');
    const times = events.map((e) => Date.parse(e.data.at));
    expect(times.every((t, i) => i === 0 || t >= times[i - 1]!)).toBe(true);
    const comps = events
      .slice(6, 8)
      .map((e) => (e.type === 'BranchSucceeded' ? `${e.data.branchId}/${e.data.op}` : e.type));
    expect(comps).toEqual(['02/compensate', '01/compensate']);
  });
});
