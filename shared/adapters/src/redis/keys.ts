import type { Gid } from '@dtm-ts/domain';

/** Where the Redis adapters keep their keys: a namespace and the number of partitions gids are spread over. */
export interface RedisKeyOptions {
  /** Namespace of every key, so several deployments (or tests) can share one Redis. */
  readonly prefix: string;
  /** Number of partitions (hash slots) gids are spread over. Fixed for the life of the data: changing it moves gids. */
  readonly partitions?: number;
}

/** Partitions when the caller does not say: enough to spread a small cluster, few enough to poll cheaply. */
export const DEFAULT_PARTITIONS = 4;

const encoder = new TextEncoder();

/** FNV-1a, 32 bits, over the UTF-8 bytes of `s`: cheap, stable across processes and languages. */
export const fnv1a32 = (s: string): number => {
  let hash = 0x811c9dc5;
  for (const byte of encoder.encode(s)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
};

/** The partition of `gid` among `partitions`. */
export const partitionOf = (gid: Gid, partitions: number = DEFAULT_PARTITIONS): number => fnv1a32(gid) % partitions;

/** Width of the create-time part of a read-model index member: epoch ms fit in 13 digits until the year 2286. */
const CREATE_TIME_DIGITS = 15;

/** Create time as the fixed-width prefix of index members, so lexical order is time order. */
export const padCreateTime = (createTime: number): string =>
  String(Math.max(0, Math.trunc(createTime))).padStart(CREATE_TIME_DIGITS, '0');

/** Member of the read-model index for a transaction: lexical order is (createTime, gid). */
export const indexMember = (createTime: number, gid: Gid): string => `${padCreateTime(createTime)}|${gid}`;

/**
 * Key layout of the Redis event log, feed and read model.
 *
 * Every key of one gid carries the hash tag of its partition (`{p3}`), not of the gid. An append must
 * push onto the gid's stream and add the feed entry in one atomic Lua script, and a projection writes the
 * gid's summary together with the partition-wide index and wake set; Redis Cluster runs a script only when
 * all its keys are in one hash slot. Tagging by gid would put each gid in its own slot, away from the shared
 * feed and indexes. Tagging by partition keeps one gid's keys together with the feed and indexes they are
 * written with, while the partitions still spread over the cluster's nodes.
 */
export class RedisKeys {
  readonly prefix: string;
  readonly partitions: number;

  constructor({ prefix, partitions = DEFAULT_PARTITIONS }: RedisKeyOptions) {
    if (!Number.isInteger(partitions) || partitions < 1)
      throw new RangeError(`partitions must be ≥ 1, got ${partitions}`);
    this.prefix = prefix;
    this.partitions = partitions;
  }

  /** The partition of `gid`. */
  partitionOf(gid: Gid): number {
    return partitionOf(gid, this.partitions);
  }

  /** Every partition number, 0 to partitions - 1. */
  all(): number[] {
    return Array.from({ length: this.partitions }, (_, n) => n);
  }

  /** `prefix:{pN}`: the part of a key that fixes its hash slot. */
  private tag(partition: number): string {
    return `${this.prefix}:{p${partition}}`;
  }

  /** LIST of one transaction's events as JSON, index = revision. */
  streamKey(gid: Gid): string {
    return `${this.tag(this.partitionOf(gid))}:tx:${gid}`;
  }

  /** STREAM with one entry per append in the partition: g = gid, r = first revision, c = count. */
  feedKey(partition: number): string {
    return `${this.tag(partition)}:feed`;
  }

  /**
   * The pass lease of one gid: who drives it now. For a while after its stream moved to the archive it holds
   * 'archived' (archive-drop-5.lua): an append that would start the stream anew (a submit of the same gid racing the
   * archiver) is refused as a conflict.
   */
  leaseKey(gid: Gid): string {
    return `${this.tag(this.partitionOf(gid))}:lease:${gid}`;
  }

  /** HASH with the read model of one transaction: v = version, j = summary JSON, m = its index member. */
  readModelKey(gid: Gid): string {
    return `${this.tag(this.partitionOf(gid))}:rm:${gid}`;
  }

  /** ZSET of the partition's transactions, all scores 0, members `createTime|gid` (see indexMember). */
  indexKey(partition: number): string {
    return `${this.tag(partition)}:rm-idx`;
  }

  /** STRING with a snapshot of one transaction's folded state: `{"f":format,"v":version,"s":state}`. */
  snapshotKey(gid: Gid): string {
    return `${this.tag(this.partitionOf(gid))}:snap:${gid}`;
  }

  /** ZSET of the partition's finished transactions to archive, score = when (epoch ms), member = gid. */
  archiveDueKey(partition: number): string {
    return `${this.tag(partition)}:archive-due`;
  }

  /** SCAN pattern of every transaction stream key, and the gid of such a key. */
  streamPattern(): { match: string; gidOf: (key: string) => Gid | null } {
    const glob = this.prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
    const literal = this.prefix.replace(/[.*+?^$()|[\]{}\\]/g, (c) => `\\${c}`);
    const head = new RegExp(`^${literal}:\\{p\\d+\\}:tx:`);
    return {
      match: `${glob}:{p*}:tx:*`,
      gidOf: (key) => {
        const m = head.exec(key);
        return m ? key.slice(m[0].length) : null;
      },
    };
  }

  /** ZSET of the partition's unfinished transactions, score = when to drive them next (epoch ms). */
  wakeKey(partition: number): string {
    return `${this.tag(partition)}:rm-wake`;
  }
}
