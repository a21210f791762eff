import { describe, expect, it } from 'vitest';
import { StuckWorkerWatchdog, type Watched } from './stuck-worker-watchdog';

const consumer = (lastActivity: number, backlog: boolean | Error) => {
  const c = {
    restarts: 0,
    probes: 0,
    lastActivity: () => lastActivity,
    hasBacklog: async () => {
      c.probes++;
      if (backlog instanceof Error) throw backlog;
      return backlog;
    },
    restart: async () => void c.restarts++,
  };
  return c satisfies Watched;
};

describe('StuckWorkerWatchdog', () => {
  const now = 100_000;
  const dog = (watched: Watched[], errors: unknown[] = []) =>
    new StuckWorkerWatchdog(watched, {
      checkMs: 1000,
      quietMs: 10_000,
      now: () => now,
      onError: (e) => errors.push(e),
    });

  it('when a consumer has been silent past the quiet time while jobs are ready for it, then it is restarted', async () => {
    const stuck = consumer(now - 10_000, true);
    expect(await dog([stuck]).check()).toEqual([0]);
    expect(stuck.restarts).toBe(1);
  });

  it('when a consumer was active lately, then it is not even probed', async () => {
    const busy = consumer(now - 9_999, true);
    expect(await dog([busy]).check()).toEqual([]);
    expect(busy.probes).toBe(0);
  });

  it('when a silent consumer has nothing to do, then it is left alone', async () => {
    const idle = consumer(now - 60_000, false);
    expect(await dog([idle]).check()).toEqual([]);
    expect(idle.probes).toBe(1);
    expect(idle.restarts).toBe(0);
  });

  it('when the probe fails, then the error is told and the others are still checked', async () => {
    const errors: unknown[] = [];
    const unreachable = consumer(now - 60_000, new Error('Connection is closed'));
    const stuck = consumer(now - 60_000, true);
    expect(await dog([unreachable, stuck], errors).check()).toEqual([1]);
    expect(unreachable.restarts).toBe(0);
    expect(errors).toHaveLength(1);
  });
});
