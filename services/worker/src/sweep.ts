import type { PassScheduler, ReadModel } from '@dtm-ts/ports';
import type { SummaryWithWake } from '@dtm-ts/engine';

/** Overdue transactions one sweep re-queues at most. */
export const SWEEP_BATCH = 500;

/**
 * The recovery sweep (DESIGN invariant 2, DTM's cron): every unfinished transaction that should have been driven
 * more than `graceMs` ago gets its pass job asked for again, under the key the lost request had, so a pass job
 * still pending in the queue absorbs it. The wake times of what it re-queued move to now, behind every other
 * overdue transaction, so the next sweeps reach the next most overdue ones: a fixed set of transactions that stay
 * overdue for ever cannot hide the others (invariant 9). Returns how many it asked for.
 */
export const sweepOnce = async (
  deps: { readModel: ReadModel; scheduler: PassScheduler; now: () => number; graceMs: number },
  limit = SWEEP_BATCH,
): Promise<number> => {
  const now = deps.now();
  const overdue = await deps.readModel.overdue(now - deps.graceMs, limit);
  // All at once: one sweep costs a few round trips, not two per transaction.
  await Promise.all(
    overdue.map(async (o) => {
      const summary = (await deps.readModel.get(o.gid)) as SummaryWithWake | null;
      await deps.scheduler.schedule(o.gid, now, summary?.wakeKey ?? `${o.version}`);
    }),
  );
  await deps.readModel.postpone(overdue, now);
  return overdue.length;
};
