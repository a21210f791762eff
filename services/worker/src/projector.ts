import { fold, type Policy } from '@dtm-ts/domain';
import { summarize } from '@dtm-ts/engine';
import type { EventLog, FeedEntry, ReadModel } from '@dtm-ts/ports';

/**
 * Projects the log into the read model. Order-free and idempotent: for every gid in a batch it
 * folds the whole stream and stores the result under its version, so redeliveries, replays and
 * two projectors racing all converge on the newest state.
 */
export const projectEntries = async (
  deps: { log: EventLog; readModel: ReadModel; requestTimeoutMs: number; policy?: Policy; retentionMs?: number },
  entries: readonly FeedEntry[],
): Promise<void> => {
  // `$`-streams (topics) are not transactions: the read model lists transactions only.
  const gids = [...new Set(entries.map((e) => e.gid))].filter((g) => !g.startsWith('$'));
  await Promise.all(
    gids.map(async (gid) => {
      const { events, version } = await deps.log.read(gid);
      const tx = fold(events);
      if (tx.status === 'none') return;
      const { summary, wakeAt } = summarize(tx, version, deps.requestTimeoutMs, deps.policy);
      // Retention counts from the end: finished transactions leave the read model, never the log.
      const endedAt = tx.finishTime ?? tx.rollbackTime;
      const expireAt = deps.retentionMs && wakeAt === null && endedAt !== null ? endedAt + deps.retentionMs : null;
      await deps.readModel.put(summary, version, wakeAt, expireAt);
    }),
  );
};
