import { describe, expect, it } from 'vitest';
import { buildSchedule, type ScheduleOptions } from './schedule';

const opts: ScheduleOptions = { durationMs: 60_000, meanGapMs: 5_000, leaseMs: 4_000, clockOffsetS: 30 };

describe('chaos schedule', () => {
  it('when built twice from one seed, then it is the same schedule (a failing seed replays)', () => {
    expect(buildSchedule(42, opts)).toEqual(buildSchedule(42, opts));
  });

  it('when built from another seed, then the schedule differs', () => {
    expect(buildSchedule(43, opts)).not.toEqual(buildSchedule(42, opts));
  });

  it('when the run is short, then it still holds every kind of fault and a proxy fault on every target, within the run and in time order', () => {
    for (const seed of [1, 2, 3, 99, 12345]) {
      const s = buildSchedule(seed, { ...opts, durationMs: 20_000 });
      const kinds = new Set(s.map((f) => f.kind));
      for (const k of [
        'kill-api',
        'kill-worker',
        'pause-worker',
        'kill-redis',
        'restart-kafka',
        'proxy',
        'clock-jump',
        'partition',
      ])
        expect(kinds, `seed ${seed}`).toContain(k);
      expect(new Set(s.flatMap((f) => (f.kind === 'proxy' ? [f.target] : [])))).toEqual(
        new Set(['alpha', 'beta', 'redis', 'kafka']),
      );
      expect(s.every((f) => f.atMs >= 0 && f.atMs < 20_000)).toBe(true);
      expect(s.map((f) => f.atMs)).toEqual([...s.map((f) => f.atMs)].sort((a, b) => a - b));
    }
  });

  it('when a worker is paused or partitioned, then for longer than its lease (so its passes are taken over)', () => {
    for (const f of buildSchedule(7, { ...opts, durationMs: 600_000 })) {
      if (f.kind === 'pause-worker') expect(f.ms).toBeGreaterThan(opts.leaseMs);
      if (f.kind === 'partition') expect(f.forMs).toBeGreaterThan(2 * opts.leaseMs);
    }
  });
});
