import type { RedisClient } from './client';
import { RedisKeys, type RedisKeyOptions } from './keys';
import {
  compareStreamIds,
  parseFeedEntry,
  resolveFeedEntries,
  type RawFeedEntry,
  type RedisFeedEntry,
} from './event-log';
import { WakeableSleep } from '../wakeable-sleep';

/** Options of a consumer-group subscription to the Redis feed. */
export interface RedisFeedSubscriberOptions extends RedisKeyOptions {
  /** Consumer group: every group sees every append; consumers of one group share them. */
  readonly group: string;
  /** This consumer's name in the group, unique per live process (entries delivered to it stay its own until acked). */
  readonly consumer: string;
  /** Entries per read, per partition. Default 100. */
  readonly batch?: number;
  /** How long one read waits for new entries; also bounds how late a reclaim pass may start. Default 2,000 ms. */
  readonly blockMs?: number;
  /**
   * Entries delivered this long ago and still not acked are taken over (a dead consumer's, or a failed batch).
   * Must exceed the handler's longest run, or a slow batch is processed twice. Default 30,000 ms.
   */
  readonly claimIdleMs?: number;
  /** Pause after a failed handler or Redis error before the loop goes on. Default 1,000 ms. */
  readonly retryDelayMs?: number;
  /**
   * Trims each partition's feed to what some group may still need (entries not yet delivered, or delivered
   * and not acked), at every reclaim pass. Default true. The log's streams keep every event; the feed is only
   * the projectors' work list.
   */
  readonly trim?: boolean;
  /** Told about every failure the loops survive: handler errors, lost connections, a vanished group. */
  readonly onError?: (err: unknown, partition: number) => void;
}

/**
 * Processes a batch of one partition's feed. Resolve to ack the batch; reject to leave it pending, for a later
 * reclaim. Batches of different partitions may run concurrently; one partition's run one at a time, in feed
 * order, except reclaimed entries, which come late.
 */
export type FeedHandler = (entries: RedisFeedEntry[]) => Promise<void>;

/** Stream entry as XREADGROUP and XAUTOCLAIM reply it; fields are null when the entry was deleted. */
type StreamReplyEntry = [id: string, fields: string[] | null];

interface PartitionLoop {
  readonly partition: number;
  readonly conn: RedisClient;
  /** True while the handler runs: stop lets it finish and ack instead of cutting its connection. */
  inHandler: boolean;
  done?: Promise<void>;
}

/** The stream id right after `id` (`ms-seq` + 1). */
const nextStreamId = (id: string): string => {
  const [ms = '0', seq = '0'] = id.split('-');
  return `${ms}-${BigInt(seq) + 1n}`;
};

/** Reads a flat `[field, value, ...]` reply (XINFO) into a record. */
const fieldsOf = (flat: unknown[]): Record<string, unknown> => {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
  return out;
};

/**
 * Deletes the entries of a feed stream that every consumer group has acknowledged: those older than each
 * group's oldest pending entry and than what it has not been delivered yet (`XTRIM MINID`). Returns how
 * many it deleted (0 when the stream has no group: nobody said what it needs).
 *
 * Safe without a transaction: acknowledgements are final and new deliveries only take ids above the
 * last-delivered id read first, so the floor computed can only be lower than the true one, never higher.
 */
export const trimFeed = async (conn: RedisClient, key: string): Promise<number> => {
  const groups = ((await conn.call('XINFO', 'GROUPS', key)) as unknown[][]).map(fieldsOf);
  if (groups.length === 0) return 0;
  let floor: string | null = null;
  for (const g of groups) {
    let groupFloor = nextStreamId(String(g['last-delivered-id']));
    if (Number(g.pending) > 0) {
      const [, oldest] = (await conn.xpending(key, String(g.name))) as [number, string | null, ...unknown[]];
      if (oldest && compareStreamIds(oldest, groupFloor) < 0) groupFloor = oldest;
    }
    if (floor === null || compareStreamIds(groupFloor, floor) < 0) floor = groupFloor;
  }
  return floor === null ? 0 : Number(await conn.xtrim(key, 'MINID', floor));
};

const errorCode = (err: unknown): string => (err instanceof Error ? (err.message.split(' ')[0] ?? '') : '');

/**
 * Consumes the feed through a Redis consumer group: at-least-once, each append acked after the handler
 * resolved. One loop per partition, each on its own connection, because a blocking read holds its connection.
 * Entries a consumer took and never acked (it died, or its handler failed) are reclaimed after `claimIdleMs`
 * by whichever consumer of the group runs its reclaim pass first.
 */
export class RedisFeedSubscriber {
  private readonly keys: RedisKeys;
  private readonly batch: number;
  private readonly blockMs: number;
  private readonly claimIdleMs: number;
  private readonly claimEveryMs: number;
  private readonly retryDelayMs: number;
  private loops: PartitionLoop[] = [];
  private stopped = false;
  private readonly sleeps = new WakeableSleep();

  constructor(
    private readonly redis: RedisClient,
    private readonly options: RedisFeedSubscriberOptions,
  ) {
    this.keys = new RedisKeys(options);
    this.batch = options.batch ?? 100;
    this.blockMs = options.blockMs ?? 2_000;
    this.claimIdleMs = options.claimIdleMs ?? 30_000;
    this.claimEveryMs = Math.min(Math.max(this.claimIdleMs / 2, 100), 10_000);
    this.retryDelayMs = options.retryDelayMs ?? 1_000;
  }

  /** Creates the group where missing (from the start of the feed), then runs the loops until `stop`. */
  async start(handler: FeedHandler): Promise<void> {
    if (this.loops.length) throw new Error('subscriber already started');
    this.stopped = false;
    await Promise.all(this.keys.all().map((n) => this.ensureGroup(this.redis, n)));
    if (this.stopped) return; // stop() came while the groups were being created
    this.loops = this.keys.all().map((partition) => {
      const conn = this.redis.duplicate();
      // Failures reach the loop through the commands it awaits; without a listener ioredis would print them.
      conn.on('error', () => undefined);
      return { partition, conn, inHandler: false };
    });
    for (const loop of this.loops) loop.done = this.run(loop, handler);
  }

  /**
   * Ends the loops and resolves once they ended: a loop waiting on Redis at once (its connection is cut; an
   * entry caught between handler and ack stays pending and is reclaimed later), a running handler once it
   * resolved and its batch is acked.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.sleeps.wakeAll();
    for (const loop of this.loops) if (!loop.inHandler) loop.conn.disconnect();
    await Promise.all(this.loops.map((loop) => loop.done ?? Promise.resolve()));
    this.loops = [];
  }

  private async run(loop: PartitionLoop, handler: FeedHandler): Promise<void> {
    const { conn, partition } = loop;
    const key = this.keys.feedKey(partition);
    // Entries this consumer name took before a restart are still its own: go through them first.
    let ownPendingFrom: string | null = '0';
    let nextClaim = 0;
    try {
      while (!this.stopped) {
        try {
          if (Date.now() >= nextClaim) {
            await this.reclaim(loop, handler);
            if (this.options.trim ?? true) await trimFeed(conn, key);
            nextClaim = Date.now() + this.claimEveryMs;
            continue;
          }
          if (ownPendingFrom !== null) {
            const entries = await this.readGroup(conn, key, ownPendingFrom, null);
            const last = entries.at(-1);
            ownPendingFrom = last ? last[0] : null;
            // A failed batch waits for the reclaim pass, like any other unacked entry.
            if (!(await this.process(loop, entries, handler))) ownPendingFrom = null;
            continue;
          }
          const entries = await this.readGroup(conn, key, '>', this.blockMs);
          await this.process(loop, entries, handler);
        } catch (err) {
          if (this.stopped) break;
          this.options.onError?.(err, partition);
          // Data lost with a restart without AOF, or someone deleted the group: recreate it and carry on.
          if (errorCode(err) === 'NOGROUP') await this.ensureGroup(conn, partition).catch(() => undefined);
          await this.pause();
        }
      }
    } finally {
      conn.disconnect();
    }
  }

  /** XREADGROUP one partition from `id` ('>' for new entries, else this consumer's pending after `id`). */
  private async readGroup(
    conn: RedisClient,
    key: string,
    id: string,
    blockMs: number | null,
  ): Promise<StreamReplyEntry[]> {
    const { group, consumer } = this.options;
    const block = blockMs === null ? [] : ['BLOCK', blockMs];
    const reply = (await conn.call(
      'XREADGROUP',
      'GROUP',
      group,
      consumer,
      'COUNT',
      this.batch,
      ...block,
      'STREAMS',
      key,
      id,
    )) as [string, StreamReplyEntry[]][] | null;
    return reply?.[0]?.[1] ?? [];
  }

  /** Takes over entries idle longer than `claimIdleMs` (a dead consumer's, or failed batches) and handles them. */
  private async reclaim(loop: PartitionLoop, handler: FeedHandler): Promise<void> {
    const key = this.keys.feedKey(loop.partition);
    const { group, consumer } = this.options;
    let cursor = '0-0';
    // Bounded, so a large backlog of stale entries does not starve new ones; the next pass goes on.
    for (let round = 0; round < 10 && !this.stopped; round++) {
      const [next, entries] = (await loop.conn.xautoclaim(
        key,
        group,
        consumer,
        this.claimIdleMs,
        cursor,
        'COUNT',
        this.batch,
      )) as [string, StreamReplyEntry[]];
      if (!(await this.process(loop, entries, handler))) return;
      if (next === '0-0') return;
      cursor = next;
    }
  }

  /** Resolves the entries' events, runs the handler, acks. False when the handler failed (nothing acked). */
  private async process(loop: PartitionLoop, entries: StreamReplyEntry[], handler: FeedHandler): Promise<boolean> {
    if (entries.length === 0) return true;
    const key = this.keys.feedKey(loop.partition);
    const live: RawFeedEntry[] = [];
    for (const [id, fields] of entries) if (fields) live.push(parseFeedEntry(loop.partition, [id, fields]));
    const resolved = await resolveFeedEntries(loop.conn, this.keys, live, (e) => e.id);
    if (resolved.length) {
      // Once stop cut the connection, a batch could not be acked: leave it pending rather than handle it twice.
      if (this.stopped) return false;
      loop.inHandler = true;
      try {
        await handler(resolved);
      } catch (err) {
        this.options.onError?.(err, loop.partition);
        await this.pause();
        return false;
      } finally {
        loop.inHandler = false;
      }
    }
    // Deleted entries are acked too: they can never be handled and would sit in the pending list forever.
    await loop.conn.xack(key, this.options.group, ...entries.map(([id]) => id));
    return true;
  }

  private async ensureGroup(conn: RedisClient, partition: number): Promise<void> {
    try {
      await conn.xgroup('CREATE', this.keys.feedKey(partition), this.options.group, '0', 'MKSTREAM');
    } catch (err) {
      if (errorCode(err) !== 'BUSYGROUP') throw err;
    }
  }

  /** Waits `retryDelayMs`, or less if the subscriber stops meanwhile. */
  private pause(): Promise<void> {
    return this.stopped ? Promise.resolve() : this.sleeps.sleep(this.retryDelayMs);
  }
}
