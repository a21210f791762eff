import { describe, expect, it } from 'vitest';
import { rebuildReadModel } from '@dtm-ts/worker';
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

    const appends = await rebuildReadModel({
      log: fx.tm.infra.log,
      feed: fx.tm.infra.log,
      readModel: fx.tm.infra.readModel,
      requestTimeoutMs: 3000,
    });
    expect(appends).toBeGreaterThanOrEqual(20 * 3);
    expect({ all: await allPages(''), failed: await allPages('status=failed') }).toEqual(before);
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
