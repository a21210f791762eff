import { readFileSync } from 'node:fs';
import { pipelineOf, type RedisClient } from './client';
import type { Gid } from '@dtm-ts/domain';
import type { ListQuery, ReadModel, TransactionSummary } from '@dtm-ts/ports';
import { indexMember, padCreateTime, RedisKeys, type RedisKeyOptions } from './keys';
import { redisScripts, type RedisScripts } from './scripts';

/** Options of the Redis read model. */
export interface RedisReadModelOptions extends RedisKeyOptions {
  /**
   * Index members one `list` call may examine before it returns what it has and a cursor to continue from.
   * Bounds the cost of a page when filters match little. Default 10,000.
   */
  readonly scanLimit?: number;
  /**
   * The event log is in Redis and archives finished streams: record each finished transaction's expiry in
   * the partition's archive-due set, where the archiver finds it. Default false.
   */
  readonly archive?: boolean;
}

const POSTPONE = {
  name: 'dtmPostpone1',
  lua: readFileSync(new URL('./lua/postpone-1.lua', import.meta.url), 'utf8'),
} as const;
type WithPostpone = RedisClient &
  Record<typeof POSTPONE.name, (key: string, gid: Gid, was: number, at: number) => Promise<number>>;

/** Members of an index look like `000001700000000000|gid`: the gid starts after the fixed-width time and the bar. */
const gidOfMember = (member: string): Gid => member.slice(padCreateTime(0).length + 1);

/** Redis orders index members by their bytes; JavaScript's `<` orders UTF-16 units, which differs past ASCII. */
const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** One partition's share of a `list` call: the members fetched but not yet merged, newest first. */
interface PartitionScan {
  readonly partition: number;
  /** Exclusive upper lex bound of the next fetch. */
  max: string;
  /** Fetched members not merged yet, oldest first: the newest is at the end, where pop is cheap. */
  readonly pending: { member: string; summary: TransactionSummary | null }[];
  exhausted: boolean;
}

/**
 * Read model on Redis: one HASH per transaction, plus per partition a lexically ordered index for `/all`-style
 * listing and a wake set for recovery. Writes go through project-4.lua, which keeps the three in step and
 * refuses to go back in version, so projectors may replay or race.
 */
export class RedisReadModel implements ReadModel {
  readonly keys: RedisKeys;
  private readonly scripts: RedisScripts;
  private readonly scanLimit: number;
  private readonly archive: boolean;

  constructor(
    private readonly redis: RedisClient,
    options: RedisReadModelOptions,
  ) {
    this.keys = new RedisKeys(options);
    this.scripts = redisScripts(redis);
    if (!(POSTPONE.name in redis)) redis.defineCommand(POSTPONE.name, { numberOfKeys: 1, lua: POSTPONE.lua });
    this.scanLimit = Math.max(1, options.scanLimit ?? 10_000);
    this.archive = options.archive ?? false;
  }

  async put(
    summary: TransactionSummary,
    version: number,
    wakeAt: number | null,
    expireAt?: number | null,
  ): Promise<void> {
    await this.project(summary, version, wakeAt, expireAt);
  }

  /** `put`, telling whether it wrote: false when the same or a newer version was already stored. */
  async project(
    summary: TransactionSummary,
    version: number,
    wakeAt: number | null,
    expireAt?: number | null,
  ): Promise<boolean> {
    if (!Number.isInteger(version) || version < 0)
      throw new RangeError(`version must be an integer ≥ 0, got ${version}`);
    const partition = this.keys.partitionOf(summary.gid);
    return this.scripts.project({
      readModelKey: this.keys.readModelKey(summary.gid),
      indexKey: this.keys.indexKey(partition),
      wakeKey: this.keys.wakeKey(partition),
      archiveDueKey: this.keys.archiveDueKey(partition),
      archive: this.archive,
      gid: summary.gid,
      version,
      summary: JSON.stringify(summary),
      indexMember: indexMember(summary.createTime, summary.gid),
      // -1 means "finished" to the script: a wake time before 1970 is simply due.
      wakeAt: wakeAt === null ? null : Math.max(0, Math.trunc(wakeAt)),
      expireAt: expireAt == null ? null : Math.max(0, Math.trunc(expireAt)),
    });
  }

  /**
   * Drops index entries whose transaction left the read model (retention expired its hash), among
   * those created before `createdBefore`. Returns how many it dropped.
   */
  async compact(createdBefore: number, batch = 500): Promise<number> {
    let dropped = 0;
    for (const partition of this.keys.all()) {
      const key = this.keys.indexKey(partition);
      let min = '-';
      for (;;) {
        const members = await this.redis.zrangebylex(key, min, `(${padCreateTime(createdBefore)}`, 'LIMIT', 0, batch);
        if (members.length === 0) break;
        const exists = pipelineOf(this.redis);
        for (const m of members) exists.exists(this.keys.readModelKey(gidOfMember(m)));
        const replies = (await exists.exec()) ?? [];
        const gone = members.filter((_, i) => replies[i]?.[1] === 0);
        if (gone.length) {
          await this.redis.zrem(key, ...gone);
          dropped += gone.length;
        }
        if (members.length < batch) break;
        min = `(${members[members.length - 1]!}`;
      }
    }
    return dropped;
  }

  async get(gid: Gid): Promise<TransactionSummary | null> {
    const json = await this.redis.hget(this.keys.readModelKey(gid), 'j');
    return json === null ? null : (JSON.parse(json) as TransactionSummary);
  }

  /**
   * Newest first (by create time, then gid, both descending), across partitions. `position` is the `next` of
   * the previous page: an index member, which orders globally, so one cursor serves every partition.
   *
   * A page may hold fewer than `limit` items and still have a `next`: when filters match little, the call
   * stops after examining `scanLimit` members and returns where to continue. `next` is '' only when nothing
   * after the last item matches.
   */
  async list(q: ListQuery): Promise<{ items: TransactionSummary[]; next: string }> {
    if (q.limit <= 0) return { items: [], next: '' };
    // Lex bounds: `(x` excludes x; a member `t|gid` sorts after the bare time t, before the next time.
    const bounds: string[] = [];
    if (q.position) bounds.push(q.position);
    if (q.createTimeEnd !== undefined) bounds.push(padCreateTime(q.createTimeEnd + 1));
    const max = bounds.length ? `(${bounds.reduce((a, b) => (byteOrder(a, b) < 0 ? a : b))}` : '+';
    const min = q.createTimeStart !== undefined ? `[${padCreateTime(q.createTimeStart)}` : '-';
    const batch = Math.min(Math.max(q.limit, 100), this.scanLimit);
    const matches = (s: TransactionSummary | null): s is TransactionSummary =>
      s !== null && (!q.status || s.status === q.status) && (!q.transType || s.transType === q.transType);

    const scans: PartitionScan[] = this.keys
      .all()
      .map((partition) => ({ partition, max, pending: [], exhausted: false }));
    const items: TransactionSummary[] = [];
    let lastReturned = '';
    let lastExamined = '';
    let examined = 0;
    for (;;) {
      await Promise.all(
        scans.filter((s) => !s.exhausted && s.pending.length === 0).map((s) => this.fetch(s, min, batch)),
      );
      let newest: PartitionScan | undefined;
      for (const scan of scans) {
        const head = scan.pending.at(-1);
        const best = newest?.pending.at(-1);
        if (head && (!best || byteOrder(head.member, best.member) > 0)) newest = scan;
      }
      const head = newest?.pending.pop();
      if (!head) return { items, next: '' };
      if (examined >= this.scanLimit) return { items, next: items.length === q.limit ? lastReturned : lastExamined };
      examined++;
      if (items.length === q.limit) {
        // The page is full; one more match means there is a next page.
        if (matches(head.summary)) return { items, next: lastReturned };
        continue;
      }
      lastExamined = head.member;
      if (matches(head.summary)) {
        items.push(head.summary);
        lastReturned = head.member;
      }
    }
  }

  /**
   * Unfinished transactions whose wake time is at or before `before`, earliest first, with the version of
   * the summary stored when they were read (which may be newer than the one that set the wake time).
   */
  async overdue(before: number, limit: number): Promise<{ gid: Gid; version: number; wakeAt: number }[]> {
    return this.wakeRange('-inf', String(before), limit);
  }

  /** Moves each overdue entry's wake time to `until`, unless a newer projection changed it since it was read. */
  async postpone(overdue: readonly { gid: Gid; wakeAt: number }[], until: number): Promise<void> {
    const redis = this.redis as WithPostpone;
    await Promise.all(
      overdue.map((o) => redis[POSTPONE.name](this.keys.wakeKey(this.keys.partitionOf(o.gid)), o.gid, o.wakeAt, until)),
    );
  }

  /** How many transactions are unfinished (the wake sets hold exactly those). */
  async unfinishedCount(): Promise<number> {
    const counts = pipelineOf(this.redis);
    for (const n of this.keys.all()) counts.zcard(this.keys.wakeKey(n));
    let total = 0;
    for (const [err, n] of (await counts.exec()) ?? []) {
      if (err) throw err;
      total += Number(n);
    }
    return total;
  }

  /** Unfinished transactions that wake only after `after` (epoch ms, exclusive), earliest first. */
  async scheduledAfter(after: number, limit: number): Promise<{ gid: Gid; version: number; wakeAt: number }[]> {
    return this.wakeRange(`(${after}`, '+inf', limit);
  }

  private async wakeRange(
    min: string,
    max: string,
    limit: number,
  ): Promise<{ gid: Gid; version: number; wakeAt: number }[]> {
    if (limit <= 0) return [];
    const ranges = pipelineOf(this.redis);
    for (const n of this.keys.all()) {
      ranges.zrangebyscore(this.keys.wakeKey(n), min, max, 'WITHSCORES', 'LIMIT', 0, limit);
    }
    const due: { gid: Gid; wakeAt: number }[] = [];
    for (const [err, raw] of (await ranges.exec()) ?? []) {
      if (err) throw err;
      const flat = raw as string[];
      for (let i = 0; i + 1 < flat.length; i += 2) due.push({ gid: flat[i] as string, wakeAt: Number(flat[i + 1]) });
    }
    due.sort((a, b) => a.wakeAt - b.wakeAt || (a.gid < b.gid ? -1 : a.gid > b.gid ? 1 : 0));
    const chosen = due.slice(0, limit);
    if (chosen.length === 0) return [];
    const versions = pipelineOf(this.redis);
    for (const d of chosen) versions.hget(this.keys.readModelKey(d.gid), 'v');
    const replies = (await versions.exec()) ?? [];
    return chosen.flatMap((d, i) => {
      const [err, v] = replies[i] ?? [new Error('no reply'), null];
      if (err) throw err;
      return v === null ? [] : [{ gid: d.gid, version: Number(v), wakeAt: d.wakeAt }];
    });
  }

  /** Fetches the next batch of one partition's index, with the summaries, newest at the end of `pending`. */
  private async fetch(scan: PartitionScan, min: string, batch: number): Promise<void> {
    const members = await this.redis.zrevrangebylex(
      this.keys.indexKey(scan.partition),
      scan.max,
      min,
      'LIMIT',
      0,
      batch,
    );
    if (members.length < batch) scan.exhausted = true;
    const last = members.at(-1);
    if (last === undefined) return;
    scan.max = `(${last}`;
    const pipeline = pipelineOf(this.redis);
    for (const m of members) pipeline.hget(this.keys.readModelKey(gidOfMember(m)), 'j');
    const replies = (await pipeline.exec()) ?? [];
    for (let i = members.length - 1; i >= 0; i--) {
      const [err, json] = replies[i] ?? [new Error('no reply'), null];
      if (err) throw err;
      scan.pending.push({
        member: members[i] as string,
        summary: typeof json === 'string' ? (JSON.parse(json) as TransactionSummary) : null,
      });
    }
  }
}
