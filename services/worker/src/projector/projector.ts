import { fold, type GlobalTransaction, type Policy } from '@dtm-ts/domain';
import { readState, summarize } from '@dtm-ts/engine';
import type { EventLog, FeedEntry, ReadModel } from '@dtm-ts/ports';
import { ByteLru } from '@dtm-ts/adapters';

export interface ProjectorDeps {
  readonly log: EventLog;
  readonly readModel: ReadModel;
  readonly requestTimeoutMs: number;
  readonly policy: Policy;
  readonly retentionMs?: number;
  /** Folded states of recently seen transactions, so an entry that follows them needs no read. */
  readonly cache?: FoldCache;
}

/** Default budget of a projector's fold cache. */
export const FOLD_CACHE_BYTES = 32 * 1024 * 1024;

/**
 * Folded states of recently projected transactions by gid, least recently used out first, bounded by
 * bytes (a state holds its payloads, which may be up to MAX_BODY_BYTES each): the feed's entries usually
 * extend what it holds.
 */
export class FoldCache {
  private readonly lru: ByteLru<string, { state: GlobalTransaction; version: number }>;

  constructor(maxBytes = FOLD_CACHE_BYTES) {
    this.lru = new ByteLru(maxBytes);
  }

  /** Bytes held now (estimated). */
  get bytes(): number {
    return this.lru.bytes;
  }

  get(gid: string): { state: GlobalTransaction; version: number } | undefined {
    return this.lru.get(gid);
  }

  set(gid: string, value: { state: GlobalTransaction; version: number }): void {
    this.lru.set(gid, value);
  }

  delete(gid: string): void {
    this.lru.delete(gid);
  }
}

/**
 * The state of `gid` after `entries` (its appends, in order): extends the cached fold when the
 * entries follow it exactly, else folds the whole stream from the log (a gap: another projector
 * took some entries, or a restart).
 */
const stateAfter = async (
  deps: ProjectorDeps,
  gid: string,
  entries: readonly FeedEntry[],
): Promise<{ state: GlobalTransaction; version: number }> => {
  let cur = deps.cache?.get(gid);
  for (const e of entries) {
    if (!cur || e.firstRevision !== cur.version + 1) {
      cur = undefined;
      break;
    }
    cur = { state: fold(e.events, cur.state), version: cur.version + e.events.length };
  }
  if (!cur && entries[0]?.firstRevision === 0) {
    // A stream's first append: the entries may be all of it.
    let version = -1;
    let state: GlobalTransaction = fold([]);
    let whole = true;
    for (const e of entries) {
      if (e.firstRevision !== version + 1) whole = false;
      state = fold(e.events, state);
      version += e.events.length;
    }
    if (whole) cur = { state, version };
  }
  if (!cur) {
    cur = await readState(deps.log, gid);
  }
  deps.cache?.set(gid, cur);
  return cur;
};

/**
 * Projects the log into the read model. Order-free and idempotent: for every gid in a batch it
 * stores the folded state under its version, so redeliveries, replays and two projectors racing all
 * converge on the newest state (the read model keeps the highest version).
 */
export const projectEntries = async (deps: ProjectorDeps, entries: readonly FeedEntry[]): Promise<void> => {
  // `$`-streams (topics) are not transactions: the read model lists transactions only.
  const byGid = new Map<string, FeedEntry[]>();
  for (const e of entries) {
    if (e.gid.startsWith('$')) continue;
    const list = byGid.get(e.gid);
    if (list) list.push(e);
    else byGid.set(e.gid, [e]);
  }
  await Promise.all(
    [...byGid].map(async ([gid, list]) => {
      list.sort((a, b) => a.firstRevision - b.firstRevision);
      const { state: tx, version } = await stateAfter(deps, gid, list);
      if (tx.status === 'none') return;
      const { summary, wakeAt } = summarize(tx, version, deps.requestTimeoutMs, deps.policy);
      // Retention counts from the end: finished transactions leave the read model, never the log.
      const endedAt = tx.finishTime ?? tx.rollbackTime;
      const expireAt = deps.retentionMs && wakeAt === null && endedAt !== null ? endedAt + deps.retentionMs : null;
      await deps.readModel.put(summary, version, wakeAt, expireAt);
      if (wakeAt === null) deps.cache?.delete(gid);
    }),
  );
};
