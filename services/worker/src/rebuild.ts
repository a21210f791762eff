import type { Policy } from '@dtm-ts/domain';
import type { EventFeed, EventLog, FeedEntry, ReadModel } from '@dtm-ts/ports';
import { transactionIds } from './stream-ids';
import { projectEntries } from './projector/projector';

/**
 * Rebuilds the read model from the whole log (DESIGN invariant 8): lists every live transaction (see
 * {@link transactionIds}) and projects each from its stream. Safe while the system runs: the projection is
 * version-guarded, so live updates and the rebuild converge. Archived transactions are past their retention,
 * so they would not be listed anyway. Returns how many transactions it projected.
 */
export const rebuildReadModel = async (deps: {
  log: EventLog;
  feed: EventFeed;
  readModel: ReadModel;
  requestTimeoutMs: number;
  policy: Policy;
  retentionMs?: number;
  /** Told how many transactions each page held (the CLI's progress line). */
  onProgress?: (transactions: number) => void;
}): Promise<number> => {
  let total = 0;
  for await (const ids of transactionIds(deps.log, deps.feed, { archived: false })) {
    const entries = await Promise.all(
      ids.map(async (gid): Promise<FeedEntry> => ({
        gid,
        firstRevision: 0,
        events: (await deps.log.read(gid)).events,
        checkpoint: '',
      })),
    );
    await projectEntries(deps, entries);
    total += ids.length;
    deps.onProgress?.(ids.length);
  }
  return total;
};

/** Every summary a read model lists, by gid (newest first, all pages). */
const everything = async (rm: ReadModel): Promise<Map<string, string>> => {
  const out = new Map<string, string>();
  let position = '';
  for (;;) {
    const page = await rm.list({ position, limit: 1000 });
    for (const s of page.items) out.set(s.gid, JSON.stringify({ status: s.status, record: s.record }));
    if (!page.next) return out;
    position = page.next;
  }
};

/**
 * Audit check (DESIGN invariant 8): rebuilds the log into `fresh` (an empty read model) and compares
 * it with `live`. Returns the gids whose answers differ; empty means the live read model is exactly
 * what the log says. Transactions that moved while it ran can show up: run it again to confirm.
 */
export const verifyReadModel = async (
  deps: Parameters<typeof rebuildReadModel>[0] & { fresh: ReadModel },
): Promise<{
  transactions: number;
  compared: number;
  differences: { gid: string; live: string | null; rebuilt: string | null }[];
}> => {
  const transactions = await rebuildReadModel({ ...deps, readModel: deps.fresh });
  const [live, rebuilt] = await Promise.all([everything(deps.readModel), everything(deps.fresh)]);
  const differences: { gid: string; live: string | null; rebuilt: string | null }[] = [];
  for (const gid of new Set([...live.keys(), ...rebuilt.keys()])) {
    const a = live.get(gid) ?? null;
    const b = rebuilt.get(gid) ?? null;
    if (a !== b) differences.push({ gid, live: a, rebuilt: b });
  }
  return { transactions, compared: rebuilt.size, differences };
};
