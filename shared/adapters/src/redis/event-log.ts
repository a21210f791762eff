import type { Redis } from 'ioredis';
import type { Gid, TxEvent } from '@dtm-ts/domain';
import { NO_STREAM, type EventFeed, type EventLog, type FeedCheckpoint, type FeedEntry } from '@dtm-ts/ports';
import { RedisKeys, type RedisKeyOptions } from './keys';
import { redisScripts, type RedisScripts } from './scripts';

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
  redis: Redis,
  keys: RedisKeys,
  entries: readonly RawFeedEntry[],
  checkpointOf: (entry: RawFeedEntry, index: number) => FeedCheckpoint,
): Promise<RedisFeedEntry[]> => {
  if (entries.length === 0) return [];
  const pipeline = redis.pipeline();
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
 * records every append, so the feed can be read in order per partition and consumed by groups.
 */
export class RedisEventLog implements EventLog, EventFeed {
  readonly keys: RedisKeys;
  private readonly scripts: RedisScripts;

  constructor(
    private readonly redis: Redis,
    options: RedisKeyOptions,
  ) {
    this.keys = new RedisKeys(options);
    this.scripts = redisScripts(redis);
  }

  async read(gid: Gid): Promise<{ events: TxEvent[]; version: number }> {
    const raw = await this.redis.lrange(this.keys.streamKey(gid), 0, -1);
    return { events: raw.map((json) => JSON.parse(json) as TxEvent), version: raw.length - 1 };
  }

  async append(gid: Gid, events: readonly TxEvent[], expected: number): Promise<number> {
    if (!Number.isInteger(expected) || expected < NO_STREAM) {
      throw new RangeError(`expected revision must be an integer ≥ ${NO_STREAM}, got ${expected}`);
    }
    return this.scripts.append({
      streamKey: this.keys.streamKey(gid),
      feedKey: this.keys.feedKey(this.partitionOf(gid)),
      gid,
      expected,
      events: events.map((e) => JSON.stringify(e)),
    });
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
    const pipeline = this.redis.pipeline();
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
