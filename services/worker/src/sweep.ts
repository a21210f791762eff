import type { PassScheduler, ReadModel } from '@dtm-ts/ports';
import type { SummaryWithWake } from '@dtm-ts/engine';

/**
 * The recovery sweep (DESIGN invariant 2, DTM's cron): every unfinished transaction that should
 * have been driven more than `graceMs` ago gets its pass asked for again, under the key the lost
 * request had, so a request still pending in the queue absorbs it. Returns how many it asked for.
 */
export const sweepOnce = async (
  deps: { readModel: ReadModel; scheduler: PassScheduler; now: () => number; graceMs: number },
  limit = 500,
): Promise<number> => {
  const now = deps.now();
  const overdue = await deps.readModel.overdue(now - deps.graceMs, limit);
  let asked = 0;
  for (const o of overdue) {
    const summary = (await deps.readModel.get(o.gid)) as SummaryWithWake | null;
    const key = summary?.wakeKey ?? `${o.version}`;
    await deps.scheduler.schedule(o.gid, now, key);
    asked++;
  }
  return asked;
};
