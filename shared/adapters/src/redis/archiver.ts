import type { RedisClient } from './client';
import type { TxArchive } from '../archive/file-archive';
import { RedisKeys, type RedisKeyOptions } from './keys';
import { redisScripts, type RedisScripts } from './scripts';

/** Options of the Redis archiver. */
export interface RedisArchiverOptions extends RedisKeyOptions {
  /** Transactions archived per partition per run. Default 200. */
  readonly batch?: number;
  /**
   * How long the marker left behind refuses a new stream under an archived gid, ms; covers an append that
   * checked the archive just before the stream was dropped (after that, the archive check refuses it). Each
   * marker costs Redis memory while it lives, so it is short. Default 30 s.
   */
  readonly markerTtlMs?: number;
}

/**
 * Moves finished transactions' streams out of Redis into the archive once their retention is over (the read
 * model lists them in each partition's archive-due set). Crash-safe in this order: the archive is written
 * durably first, then one script drops the stream, its snapshot and its archive-due entry, only if the stream
 * still holds exactly what was archived, and leaves a short-lived marker. A crash between the two leaves both copies (they read the same) and
 * the entry, so the next run archives it again: never a loss. Every key it touches for one gid shares that
 * gid's hash slot, so it works on Redis Cluster.
 */
export class RedisArchiver {
  private readonly keys: RedisKeys;
  private readonly scripts: RedisScripts;
  private readonly batch: number;
  private readonly markerTtlMs: number;

  constructor(
    private readonly redis: RedisClient,
    private readonly archive: TxArchive,
    options: RedisArchiverOptions,
  ) {
    this.keys = new RedisKeys(options);
    this.scripts = redisScripts(redis);
    this.batch = Math.max(1, options.batch ?? 200);
    this.markerTtlMs = options.markerTtlMs ?? 30_000;
  }

  /**
   * Archives what is due at `now` (epoch ms), a batch at a time (the batch's files written concurrently), until
   * nothing is due or `budgetMs` has passed; resolves to how many it moved.
   */
  async archiveDue(now: number, budgetMs = 30_000): Promise<number> {
    const deadline = Date.now() + budgetMs;
    let moved = 0;
    for (const partition of this.keys.all()) {
      const dueKey = this.keys.archiveDueKey(partition);
      for (;;) {
        const due = await this.redis.zrangebyscore(dueKey, '-inf', String(now), 'LIMIT', 0, this.batch);
        const done = await Promise.all(due.map((gid) => this.archiveOne(gid, dueKey)));
        moved += done.filter(Boolean).length;
        // A stream that changed stays due; stop rather than spin on it.
        if (due.length < this.batch || !done.some(Boolean) || Date.now() > deadline) break;
      }
    }
    return moved;
  }

  /** Archives one transaction now; false when its stream changed meanwhile (it stays, for the next run). */
  async archiveOne(gid: string, dueKey = this.keys.archiveDueKey(this.keys.partitionOf(gid))): Promise<boolean> {
    const streamKey = this.keys.streamKey(gid);
    const raw = await this.redis.lrange(streamKey, 0, -1);
    if (raw.length === 0) {
      // Nothing live (dropped by an earlier run, or never written): nothing to move.
      await this.redis.zrem(dueKey, gid);
      return false;
    }
    await this.archive.put(gid, raw);
    return this.scripts.archiveDrop(
      {
        streamKey,
        snapshotKey: this.keys.snapshotKey(gid),
        archiveDueKey: dueKey,
        leaseKey: this.keys.leaseKey(gid),
        readModelKey: this.keys.readModelKey(gid),
      },
      raw.length,
      gid,
      this.markerTtlMs,
    );
  }
}
