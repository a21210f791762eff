import { pipelineOf, scanKeys, type RedisClient } from './client';
import { fold, initialState, type Gid, type GlobalTransaction, type TxEvent } from '@dtm-ts/domain';
import {
  NO_STREAM,
  VersionConflict,
  type EventFeed,
  type EventLog,
  type FeedCheckpoint,
  type FeedEntry,
  type ProjectingLog,
  type Projection,
  type StateLog,
  type StreamCatalog,
} from '@dtm-ts/ports';
import type { TxArchive } from '../archive/file-archive';
import { indexMember, RedisKeys, type RedisKeyOptions } from './keys';
import { StreamArchived, redisScripts, type AppendArgs, type RedisScripts } from './scripts';
import { SNAPSHOT_FORMAT, decodeState, encodeState } from './snapshot';

/** Options of the Redis event log. */
export interface RedisEventLogOptions extends RedisKeyOptions {
  /** Where finished streams go after retention; reads fall back to it, and a new stream may not reuse its gids. */
  readonly archive?: TxArchive;
  /** A read that folds at least this many events after the last snapshot stores a new one. Default 500. */
  readonly snapshotEvery?: number;
}

/** A feed entry as Redis holds it: where it is, and which events of which stream it points to. */
export interface RawFeedEntry {
  readonly partition: number;
  /** Stream entry id, `ms-seq`. */
  readonly id: string;
  readonly gid: Gid;
  readonly firstRevision: number;
  readonly count: number;
}

/** A feed entry of the Redis log: the port's entry plus where it sits in its partition's feed stream. */
export interface RedisFeedEntry extends FeedEntry {
  readonly partition: number;
  readonly id: string;
}

/** Stream entry as XRANGE, XREADGROUP and XAUTOCLAIM reply it: `[id, [field, value, ...]]`. */
type StreamReplyEntry = [id: string, fields: string[]];

/** Reads a feed stream entry's fields (g, r, c); throws on an entry this adapter did not write. */
export const parseFeedEntry = (partition: number, [id, fields]: StreamReplyEntry): RawFeedEntry => {
  const value = (name: string): string | undefined => {
    for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
    return undefined;
  };
  const gid = value('g');
  const firstRevision = Number(value('r'));
  const count = Number(value('c'));
  if (gid === undefined || !Number.isInteger(firstRevision) || !Number.isInteger(count) || count < 1) {
    throw new Error(`malformed feed entry ${id} in partition ${partition}: ${JSON.stringify(fields)}`);
  }
  return { partition, id, gid, firstRevision, count };
};

/**
 * Fetches the events each feed entry points to, in one round trip. The append script pushes the events and
 * adds the entry atomically, so the events are there whenever the entry is.
 */
export const resolveFeedEntries = async (
  redis: RedisClient,
  keys: RedisKeys,
  entries: readonly RawFeedEntry[],
  checkpointOf: (entry: RawFeedEntry, index: number) => FeedCheckpoint,
): Promise<RedisFeedEntry[]> => {
  if (entries.length === 0) return [];
  const pipeline = pipelineOf(redis);
  for (const e of entries) pipeline.lrange(keys.streamKey(e.gid), e.firstRevision, e.firstRevision + e.count - 1);
  const replies = (await pipeline.exec()) ?? [];
  return entries.map((e, i) => {
    const [err, raw] = replies[i] ?? [new Error('no reply'), null];
    if (err) throw err;
    const events = (raw as string[]).map((json) => JSON.parse(json) as TxEvent);
    if (events.length !== e.count) {
      throw new Error(
        `feed entry ${e.id} of '${e.gid}' points to ${e.count} events, the stream holds ${events.length}`,
      );
    }
    return {
      gid: e.gid,
      firstRevision: e.firstRevision,
      events,
      checkpoint: checkpointOf(e, i),
      partition: e.partition,
      id: e.id,
    };
  });
};

/** Orders stream ids `ms-seq` numerically. */
export const compareStreamIds = (a: string, b: string): number => {
  // Sequence numbers are 64-bit: compare as bigints, not floats.
  const [aMs = 0n, aSeq = 0n] = a.split('-').map(BigInt);
  const [bMs = 0n, bSeq = 0n] = b.split('-').map(BigInt);
  if (aMs !== bMs) return aMs < bMs ? -1 : 1;
  return aSeq === bSeq ? 0 : aSeq < bSeq ? -1 : 1;
};

const STREAM_ID = /^\d+-\d+$/;

/**
 * Event log on Redis: one LIST per gid holds its events (index = revision), and one STREAM per partition
 * records every append not projected with itself (see appendProjected), so the feed can be read in order per
 * partition and consumed by groups.
 */
export class RedisEventLog implements EventLog, EventFeed, StateLog, StreamCatalog, ProjectingLog {
  readonly keys: RedisKeys;
  readonly archive: TxArchive | undefined;
  private readonly scripts: RedisScripts;
  private readonly snapshotEvery: number;

  constructor(
    private readonly redis: RedisClient,
    options: RedisEventLogOptions,
  ) {
    this.keys = new RedisKeys(options);
    this.scripts = redisScripts(redis);
    this.archive = options.archive;
    this.snapshotEvery = Math.max(1, options.snapshotEvery ?? 500);
  }

  /** The whole stream: from Redis while it is live, else from the archive. */
  async read(gid: Gid): Promise<{ events: TxEvent[]; version: number }> {
    const raw = await this.redis.lrange(this.keys.streamKey(gid), 0, -1);
    if (raw.length === 0 && this.archive) {
      // The archive is written before the live stream is dropped: one of the two always holds it.
      const archived = await this.archive.get(gid);
      if (archived) return { events: archived, version: archived.length - 1 };
    }
    return { events: raw.map((json) => JSON.parse(json) as TxEvent), version: raw.length - 1 };
  }

  /**
   * The folded state from the last snapshot plus the events after it (one round trip). When that tail is
   * `snapshotEvery` events or longer, stores a new snapshot, so the next read folds few events again.
   */
  async readState(gid: Gid): Promise<{ state: GlobalTransaction; version: number }> {
    const streamKey = this.keys.streamKey(gid);
    const snapshotKey = this.keys.snapshotKey(gid);
    const r = await this.scripts.readState(streamKey, snapshotKey);
    if (r.length === 0) {
      const { events, version } = await this.read(gid);
      return { state: fold(events), version };
    }
    let from: GlobalTransaction = initialState;
    let tail = r.tail;
    if (r.snapshot?.format === SNAPSHOT_FORMAT) from = decodeState(r.snapshot.state);
    else if (r.snapshot) tail = await this.redis.lrange(streamKey, 0, r.length - 1); // another build's snapshot
    const state = fold(
      tail.map((json) => JSON.parse(json) as TxEvent),
      from,
    );
    const version = r.length - 1;
    if (tail.length >= this.snapshotEvery) {
      await this.scripts.snapshot(streamKey, snapshotKey, SNAPSHOT_FORMAT, version, encodeState(state));
    }
    return { state, version };
  }

  async append(gid: Gid, events: readonly TxEvent[], expected: number): Promise<number> {
    return this.appendRecorded(gid, events, expected, 'feed');
  }

  /**
   * The append and the transaction's read-model row (with its index, wake and archive-due entries) in one script: no
   * feed entry, so the projector neither re-reads nor re-writes it. The stream is at the new version once the
   * append succeeds, so the row needs no version guard; a projector holding an older feed entry skips it.
   */
  async appendProjected(
    gid: Gid,
    events: readonly TxEvent[],
    expected: number,
    projection: Projection | null,
  ): Promise<number> {
    if (!projection) return this.appendRecorded(gid, events, expected, 'none');
    const { summary, wakeAt, expireAt } = projection;
    return this.appendRecorded(gid, events, expected, {
      summary: JSON.stringify(summary),
      indexMember: indexMember(summary.createTime, gid),
      // -1 means "finished" to the script: a wake time before 1970 is simply due.
      wakeAt: wakeAt === null ? null : Math.max(0, Math.trunc(wakeAt)),
      expireAt: expireAt === null ? null : Math.max(0, Math.trunc(expireAt)),
      archive: this.archive !== undefined,
      endLease: projection.endLease ?? false,
      // Only a new stream's first append takes the lease: nobody can have been driving it.
      takeLease: expected === NO_STREAM ? projection.takeLease : undefined,
    });
  }

  private async appendRecorded(
    gid: Gid,
    events: readonly TxEvent[],
    expected: number,
    record: AppendArgs['record'],
  ): Promise<number> {
    if (!Number.isInteger(expected) || expected < NO_STREAM) {
      throw new RangeError(`expected revision must be an integer ≥ ${NO_STREAM}, got ${expected}`);
    }
    // A new stream under an archived gid would start a second transaction with that gid.
    if (expected === NO_STREAM && this.archive && (await this.archive.has(gid))) throw await this.archivedConflict(gid);
    const partition = this.partitionOf(gid);
    try {
      return await this.scripts.append({
        keys: {
          streamKey: this.keys.streamKey(gid),
          feedKey: this.keys.feedKey(partition),
          readModelKey: this.keys.readModelKey(gid),
          indexKey: this.keys.indexKey(partition),
          wakeKey: this.keys.wakeKey(partition),
          archiveDueKey: this.keys.archiveDueKey(partition),
          leaseKey: this.keys.leaseKey(gid),
        },
        gid,
        expected,
        events: events.map((e) => JSON.stringify(e)),
        record,
      });
    } catch (err) {
      // The archiver dropped the stream between the check above and the append.
      if (err instanceof StreamArchived) throw await this.archivedConflict(gid);
      throw err;
    }
  }

  /**
   * Ids of every stream in Redis (SCAN of every master; a live Redis is not blocked), then, with `archived`, of every archived
   * transaction whose stream is no longer live. Pages may repeat an id (SCAN may).
   */
  async *streamIds(opts: { archived: boolean }): AsyncIterable<readonly string[]> {
    const { match, gidOf } = this.keys.streamPattern();
    for await (const keys of scanKeys(this.redis, match)) {
      const ids = keys.flatMap((k) => gidOf(k) ?? []);
      if (ids.length) yield ids;
    }
    if (!opts.archived || !this.archive) return;
    for await (const { gid } of this.archive.scan()) {
      // Archived and not yet dropped (a crash between the two): already listed above.
      if ((await this.redis.exists(this.keys.streamKey(gid))) === 0) yield [gid];
    }
  }

  private async archivedConflict(gid: Gid): Promise<VersionConflict> {
    const archived = (await this.archive?.get(gid)) ?? [];
    return new VersionConflict(gid, NO_STREAM, archived.length - 1);
  }

  /**
   * Reads up to `limit` appends after `from`, across partitions, merged by stream id (append time, as each
   * partition's Redis clock saw it). Each partition's feed is read in order, so resuming from any returned
   * checkpoint skips nothing and repeats nothing.
   *
   * The checkpoint lists the last stream id read in each partition, comma-separated (`''` for none yet);
   * it is only valid for the same number of partitions.
   */
  async readPage(from: FeedCheckpoint, limit: number): Promise<RedisFeedEntry[]> {
    if (limit <= 0) return [];
    const positions = this.parseCheckpoint(from);
    const pipeline = pipelineOf(this.redis);
    for (const n of this.keys.all()) {
      const after = positions[n];
      pipeline.xrange(this.keys.feedKey(n), after ? `(${after}` : '-', '+', 'COUNT', limit);
    }
    const replies = (await pipeline.exec()) ?? [];
    const heads = this.keys.all().map((n) => {
      const [err, raw] = replies[n] ?? [new Error('no reply'), null];
      if (err) throw err;
      return (raw as StreamReplyEntry[]).map((entry) => parseFeedEntry(n, entry));
    });

    // k-way merge by id. What is taken from a partition is always a prefix of what is left in it,
    // so the position recorded after each entry is exact.
    const stacks = heads.map((entries) => entries.reverse());
    const page: { entry: RawFeedEntry; checkpoint: string }[] = [];
    while (page.length < limit) {
      let best: RawFeedEntry[] | undefined;
      for (const stack of stacks) {
        const head = stack.at(-1);
        const bestHead = best?.at(-1);
        if (head && (!bestHead || compareStreamIds(head.id, bestHead.id) < 0)) best = stack;
      }
      const entry = best?.pop();
      if (!entry) break;
      positions[entry.partition] = entry.id;
      page.push({ entry, checkpoint: positions.join(',') });
    }
    return resolveFeedEntries(
      this.redis,
      this.keys,
      page.map((p) => p.entry),
      (_, i) => page[i]?.checkpoint ?? '',
    );
  }

  /** The partition of `gid`. */
  partitionOf(gid: Gid): number {
    return this.keys.partitionOf(gid);
  }

  /** The key of `gid`'s event LIST. */
  streamKey(gid: Gid): string {
    return this.keys.streamKey(gid);
  }

  private parseCheckpoint(from: FeedCheckpoint): string[] {
    if (from === '') return this.keys.all().map(() => '');
    const ids = from.split(',');
    if (ids.length !== this.keys.partitions || ids.some((id) => id !== '' && !STREAM_ID.test(id))) {
      throw new RangeError(`'${from}' is not a feed checkpoint of ${this.keys.partitions} partitions`);
    }
    return ids;
  }
}
