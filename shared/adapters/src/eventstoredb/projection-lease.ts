import type { RedisClient } from '../redis/client';
import type { CheckpointStore, FeedEntry, FeedSubscription } from '@dtm-ts/ports';
import { BackgroundLoop } from '../background-loop';

/** Takes the lease when free, or extends it when we hold it: 1 when we hold it afterwards, else 0. */
const ACQUIRE = `
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`;

/** Saves the checkpoint only while we hold the lease: a holder that lost it cannot move the checkpoint. */
const SAVE_IF_HOLDER = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
return 1`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * `p`, or a rejection after `ms`: with Redis unreachable a command waits for the reconnection (the connections
 * retry forever), and neither a lease round nor a stop may wait that long.
 */
const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer from Redis in ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
};

/** Raised into the subscriber when the lease is gone: it stops handling and saving, a standby takes over. */
export class ProjectionLeaseLost extends Error {
  override readonly name = 'ProjectionLeaseLost';
}

/** Redis keys of one leased projection: lease and checkpoint share a hash tag, so the fenced save is one slot. */
export const projectionLeaseKeys = (prefix: string, purpose: string) => ({
  lease: `${prefix}:esdb-projection:{${purpose}}:lease`,
  checkpoint: `${prefix}:esdb-projection:{${purpose}}:checkpoint`,
  /** Where checkpoints were kept before the lease: read once when the fenced key is still empty. */
  legacyCheckpoint: `${prefix}:esdb-checkpoint:${purpose}`,
});

export interface LeasedFeedOptions {
  readonly redis: RedisClient;
  readonly prefix: string;
  /** One lease and one checkpoint per purpose (`read-model`). */
  readonly purpose: string;
  /** Unique per subscriber instance (host, pid, random). */
  readonly owner: string;
  /** Lease time to live; a dead holder is replaced after at most about 4/3 of it. */
  readonly ttlMs: number;
  /** The subscription to run while we hold the lease, saving through the fenced `checkpoints`. */
  readonly subscribe: (checkpoints: CheckpointStore) => FeedSubscription;
  /** Told when this instance becomes the active projector (true) or stops being it (false). */
  readonly onLease?: (held: boolean) => void;
  /** Told about lease commands that failed (Redis unreachable); the loop keeps trying. */
  readonly onError?: (err: unknown) => void;
}

/**
 * A feed subscription that runs on one instance at a time: every instance competes for a Redis lease, the
 * holder runs the inner subscription and renews the lease every third of its TTL, the others stand by and try
 * to take it as often. So N workers project each event once, and when the holder dies a standby takes over
 * from the saved checkpoint within about 4/3 TTL (what the dead one handled after its last save comes again;
 * the projection is idempotent).
 *
 * Fencing: the checkpoint is saved by a script that checks the lease holder in the same step, so a holder that
 * lost the lease (paused, partitioned) cannot move it; and the handler refuses to run once the lease may have
 * expired by our own clock (the last renewal sent + TTL), so a stale holder stops writing the read model on its
 * own. A write already under way when the lease ends lands later; the read model keeps the highest version, so
 * it never takes a transaction back.
 */
export class LeasedFeedSubscription implements FeedSubscription {
  private readonly keys: ReturnType<typeof projectionLeaseKeys>;
  /** How often the holder renews and a standby tries to take the lease. */
  private readonly renewEveryMs: number;
  private readonly loop = new BackgroundLoop();
  private inner: FeedSubscription | undefined;
  /** Until when (our clock) the lease is surely ours: the send time of the last renewal that succeeded + TTL. */
  private validUntil = 0;

  constructor(private readonly options: LeasedFeedOptions) {
    this.keys = projectionLeaseKeys(options.prefix, options.purpose);
    this.renewEveryMs = Math.max(1, Math.floor(options.ttlMs / 3));
  }

  /** Whether this instance is the active projector now. */
  get active(): boolean {
    return this.inner !== undefined && Date.now() < this.validUntil;
  }

  start(handler: (entries: FeedEntry[]) => Promise<void>): Promise<void> {
    this.loop.start(() => this.run(handler));
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    await this.loop.stop();
    await this.stepDown();
    // Hand over at once rather than after the TTL: a standby takes it on its next try.
    await within(
      this.options.redis.eval(RELEASE, 1, this.keys.lease, this.options.owner),
      1_000,
      'lease release',
    ).catch((err: unknown) => this.options.onError?.(err));
  }

  private async run(handler: (entries: FeedEntry[]) => Promise<void>): Promise<void> {
    while (!this.loop.stopped) {
      await this.tick(handler);
      await this.loop.pause(this.renewEveryMs);
    }
  }

  /** One round: take or renew the lease; start the inner subscription when we got it, stop it when we lost it. */
  private async tick(handler: (entries: FeedEntry[]) => Promise<void>): Promise<void> {
    const sentAt = Date.now();
    let held: boolean;
    try {
      const reply = this.options.redis.eval(ACQUIRE, 1, this.keys.lease, this.options.owner, this.options.ttlMs);
      held = (await within(reply, this.renewEveryMs, 'lease renewal')) === 1;
    } catch (err) {
      this.options.onError?.(err);
      // Unknown: keep running until the lease may have expired, then step down.
      if (Date.now() >= this.validUntil) await this.stepDown();
      return;
    }
    if (this.loop.stopped) return;
    if (!held) {
      await this.stepDown();
      return;
    }
    this.validUntil = sentAt + this.options.ttlMs;
    if (!this.inner) await this.stepUp(handler);
  }

  private async stepUp(handler: (entries: FeedEntry[]) => Promise<void>): Promise<void> {
    const inner = this.options.subscribe(this.fencedCheckpoints());
    this.inner = inner;
    this.options.onLease?.(true);
    await inner.start(async (entries) => {
      if (!this.active) throw new ProjectionLeaseLost('projection lease lost; not projecting');
      await handler(entries);
    });
  }

  private async stepDown(): Promise<void> {
    const inner = this.inner;
    if (!inner) return;
    this.inner = undefined;
    this.validUntil = 0;
    await inner.stop();
    this.options.onLease?.(false);
  }

  private fencedCheckpoints(): CheckpointStore {
    const { redis, owner } = this.options;
    const { lease, checkpoint, legacyCheckpoint } = this.keys;
    return {
      load: async () => (await redis.get(checkpoint)) ?? (await redis.get(legacyCheckpoint)),
      save: async (position) => {
        const saved = await redis.eval(SAVE_IF_HOLDER, 2, lease, checkpoint, owner, position);
        if (saved !== 1) throw new ProjectionLeaseLost('projection lease lost; checkpoint not saved');
      },
    };
  }
}
