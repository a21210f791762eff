import { describe, expect, it } from 'vitest';
import { sagaBody, uniqueGid, useTmFixture } from '../support/tm-harness';
import { waitFor } from '../support/wait';

const fx = useTmFixture({ backoffCapS: 3 });

const gaps = (times: number[]): number[] => times.slice(1).map((t, i) => t - times[i]!);

describe('retry schedule', () => {
  it('when an action answers ONGOING, then it is retried at a fixed interval until it succeeds', async () => {
    const gid = uniqueGid('ongoing');
    fx.peer.script(`${gid}/a0`, [425, 425, 425, 200]);
    const steps = [{ action: fx.peer.url(`${gid}/a0`), compensate: fx.peer.url(`${gid}/c0`) }];
    await fx.dtm.post('/submit', sagaBody(gid, steps, { retry_interval: 1 }));
    await fx.dtm.waitFor(gid, 'succeed', 15_000);
    const g = gaps(fx.peer.callsTo(`${gid}/a0`).map((c) => c.at));
    expect(g).toHaveLength(3);
    for (const d of g) {
      expect(d).toBeGreaterThanOrEqual(950);
      expect(d).toBeLessThan(1_900);
    }
    expect(fx.peer.callsTo(`${gid}/c0`)).toHaveLength(0);
  });

  it('when an action errors, then the retries back off exponentially up to the cap, and it never rolls back', async () => {
    const gid = uniqueGid('errors');
    fx.peer.script(`${gid}/a0`, [500, 500, 500, { status: 503 }, 200]);
    const steps = [{ action: fx.peer.url(`${gid}/a0`), compensate: fx.peer.url(`${gid}/c0`) }];
    await fx.dtm.post('/submit', sagaBody(gid, steps, { retry_interval: 1 }));
    await fx.dtm.waitFor(gid, 'succeed', 25_000);
    const g = gaps(fx.peer.callsTo(`${gid}/a0`).map((c) => c.at));
    // 1 s, 2 s, then the 3 s cap (4 s uncapped), then 3 s again.
    expect(g).toHaveLength(4);
    expect(g[0]).toBeGreaterThanOrEqual(950);
    expect(g[0]).toBeLessThan(1_900);
    expect(g[1]).toBeGreaterThanOrEqual(1_950);
    expect(g[1]).toBeLessThan(2_900);
    expect(g[2]).toBeGreaterThanOrEqual(2_950);
    expect(g[2]).toBeLessThan(3_900);
    expect(g[3]).toBeGreaterThanOrEqual(2_950);
    expect(g[3]).toBeLessThan(3_900);
    expect(fx.peer.callsTo(`${gid}/c0`)).toHaveLength(0);
  });

  it('when a branch times out, then it is an error retried later, not a failure', async () => {
    const gid = uniqueGid('slow');
    fx.peer.script(`${gid}/a0`, [{ status: 200, delayMs: 2_500 }, 200]);
    const steps = [{ action: fx.peer.url(`${gid}/a0`), compensate: fx.peer.url(`${gid}/c0`) }];
    await fx.dtm.post('/submit', sagaBody(gid, steps, { retry_interval: 1, request_timeout: 1 }));
    await fx.dtm.waitFor(gid, 'succeed', 15_000);
    expect(fx.peer.callsTo(`${gid}/a0`)).toHaveLength(2);
    expect(fx.peer.callsTo(`${gid}/c0`)).toHaveLength(0);
  });

  it('when resetNextCronTime is called during a long backoff, then the branch is retried at once', async () => {
    const gid = uniqueGid('reset');
    fx.peer.script(`${gid}/a0`, [500, 200]);
    const steps = [{ action: fx.peer.url(`${gid}/a0`), compensate: fx.peer.url(`${gid}/c0`) }];
    await fx.dtm.post('/submit', sagaBody(gid, steps, { retry_interval: 60 }));
    await expect.poll(() => fx.peer.callsTo(`${gid}/a0`).length, { timeout: 5_000 }).toBe(1);
    // The error is recorded once the next call is scheduled a retry_interval away.
    await waitFor(async () => {
      const next = (await fx.dtm.query(gid)).transaction?.next_cron_time;
      return typeof next === 'string' && Date.parse(next) > Date.now() + 30_000;
    }, 'the retry scheduled 60 s away');
    const res = await fx.dtm.post('/resetNextCronTime', { gid });
    expect(res).toEqual({ status: 200, body: { dtm_result: 'SUCCESS' } });
    await fx.dtm.waitFor(gid, 'succeed', 5_000);
  });
});
