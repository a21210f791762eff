import type { Policy } from '@dtm-ts/domain';
import type { EventFeed, EventLog, ReadModel } from '@dtm-ts/ports';
import { projectEntries } from './projector';

/**
 * Rebuilds the read model from the whole log (DESIGN invariant 8): reads the feed from the
 * beginning and projects every transaction. Safe while the system runs: the projection is
 * version-guarded, so live updates and the rebuild converge. Returns how many appends it read.
 */
export const rebuildReadModel = async (
  deps: {
    log: EventLog;
    feed: EventFeed;
    readModel: ReadModel;
    requestTimeoutMs: number;
    policy?: Policy;
    retentionMs?: number;
  },
  pageSize = 1000,
): Promise<number> => {
  let checkpoint = '';
  let total = 0;
  for (;;) {
    const page = await deps.feed.readPage(checkpoint, pageSize);
    if (page.length === 0) return total;
    await projectEntries(deps, page);
    total += page.length;
    checkpoint = page[page.length - 1]!.checkpoint;
  }
};
