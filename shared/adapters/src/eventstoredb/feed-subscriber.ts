import type { RedisClient } from '../redis/client';
import {
  START,
  streamNameFilter,
  type AllStreamSubscription,
  type EventStoreDBClient,
  type Position,
} from '@eventstore/db-client';
import type { CheckpointStore, FeedEntry, FeedSubscription } from '@dtm-ts/ports';
import {
  EsdbEntryAssembler,
  EsdbStreams,
  compareEsdbPositions,
  parseEsdbCheckpoint,
  type EsdbLogOptions,
} from './event-log';
import { BackgroundLoop } from '../background-loop';

/**
 * A checkpoint in one Redis key. Subscribers of one purpose (say every worker's projector) may share it: each
 * saves only positions it has handled itself, so whichever value a restart finds, nothing before it is missing;
 * a slower subscriber's save only makes the next restart repeat some appends (projections are idempotent).
 */
export const redisCheckpointStore = (redis: RedisClient, key: string): CheckpointStore => ({
  load: () => redis.get(key),
  save: async (checkpoint) => {
    await redis.set(key, checkpoint);
  },
});

export interface EsdbFeedSubscriberOptions extends EsdbLogOptions {
  readonly checkpoints: CheckpointStore;
  /** Most entries per handler call. Default 100. */
  readonly batch?: number;
  /** Pause after a failed handler or a dropped subscription before subscribing again. Default 1,000 ms. */
  readonly retryDelayMs?: number;
  /** Told about every failure the loop survives: handler errors, lost connections. */
  readonly onError?: (err: unknown) => void;
}

/**
 * Consumes the feed through a catch-up subscription to `$all`, filtered on the server to this deployment's
 * stream-name prefixes, at least once: from the stored checkpoint, each batch handed to the handler and its
 * last checkpoint saved once the handler resolved. A failed handler or a dropped subscription subscribes again
 * from the last saved checkpoint, so nothing is skipped; what was delivered and not saved comes again.
 *
 * Only positions of handled appends are saved, never the server's filter checkpoints: a subscription resumes
 * after the position it is given, and a filter checkpoint need not be the position of an event already seen.
 * The price: after a restart, the server scans again what others wrote since our last append.
 */
export class EsdbFeedSubscriber implements FeedSubscription {
  private readonly streams: EsdbStreams;
  private readonly batch: number;
  private readonly retryDelayMs: number;
  private readonly loop = new BackgroundLoop();
  private subscription: AllStreamSubscription | undefined;
  private inHandler = false;

  constructor(
    private readonly client: EventStoreDBClient,
    private readonly options: EsdbFeedSubscriberOptions,
  ) {
    this.streams = new EsdbStreams(options.prefix);
    this.batch = options.batch ?? 100;
    this.retryDelayMs = options.retryDelayMs ?? 1_000;
  }

  start(handler: (entries: FeedEntry[]) => Promise<void>): Promise<void> {
    this.loop.start(() => this.run(handler));
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    // A running handler finishes and saves; the loop then ends the subscription itself.
    await this.loop.stop(async () => {
      if (!this.inHandler) await this.endSubscription();
    });
  }

  private async run(handler: (entries: FeedEntry[]) => Promise<void>): Promise<void> {
    while (!this.loop.stopped) {
      try {
        await this.follow(handler);
      } catch (err) {
        if (this.loop.stopped) break;
        this.options.onError?.(err);
      } finally {
        await this.endSubscription();
      }
      await this.loop.pause(this.retryDelayMs);
    }
  }

  /** One subscription, from the saved checkpoint, until it fails or ends. */
  private async follow(handler: (entries: FeedEntry[]) => Promise<void>): Promise<void> {
    let after: Position | null = parseEsdbCheckpoint((await this.options.checkpoints.load()) ?? '');
    if (this.loop.stopped) return;
    const subscription = this.client.subscribeToAll({
      fromPosition: after ?? START,
      filter: streamNameFilter({ prefixes: this.streams.prefixes() }),
    });
    this.subscription = subscription;
    const assembler = new EsdbEntryAssembler(this.streams);
    let batch: FeedEntry[] = [];
    for await (const resolved of subscription) {
      const e = resolved.event;
      // The server starts after `after`; skipping up to it again costs nothing and holds with any server.
      if (!e?.position || (after && compareEsdbPositions(e.position, after) <= 0)) continue;
      after = e.position;
      batch.push(...assembler.push(e));
      // Deliver when the batch is full, or when nothing more is waiting (caught up, or a quiet moment live).
      if (batch.length >= this.batch || (batch.length > 0 && subscription.readableLength === 0)) {
        await this.deliver(batch, handler);
        batch = [];
        if (this.loop.stopped) return;
      }
    }
  }

  private async deliver(entries: FeedEntry[], handler: (entries: FeedEntry[]) => Promise<void>): Promise<void> {
    this.inHandler = true;
    try {
      await handler(entries);
      const last = entries.at(-1);
      if (last) await this.options.checkpoints.save(last.checkpoint);
    } finally {
      this.inHandler = false;
    }
  }

  private async endSubscription(): Promise<void> {
    const subscription = this.subscription;
    this.subscription = undefined;
    if (!subscription) return;
    await subscription.unsubscribe().catch(() => undefined);
    // The client swallows the cancellation and never ends the stream: end it, so a pending read returns.
    subscription.destroy();
  }
}
