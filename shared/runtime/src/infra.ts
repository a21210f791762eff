import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Queue } from 'bullmq';
import { EventStoreDBClient } from '@eventstore/db-client';
import { Redis, type RedisOptions } from 'ioredis';
import { join } from 'node:path';
import {
  BullPassJobSource,
  BullPassScheduler,
  FileArchive,
  RedisArchiver,
  EsdbEventLog,
  EsdbFeedSubscriber,
  esdbTopicLog,
  type ClosableBranchTransport,
  type OutboundPolicy,
  RedisEventLog,
  RedisFeedSubscriber,
  RedisPassLease,
  RedisReadModel,
  redisCheckpointStore,
  redisTopicLog,
  startManagedRedis,
} from '@dtm-ts/adapters';
import type { Config } from '@dtm-ts/config';
import type { Policy } from '@dtm-ts/domain';
import { Driver } from '@dtm-ts/engine';
import {
  systemClock,
  type Clock,
  type EventFeed,
  type EventLog,
  type FeedSubscription,
  type PassJobSource,
  type PassScheduler,
  type ReadModel,
  type TopicLog,
} from '@dtm-ts/ports';
import { initMetrics, initTracing, type DtmMetrics, type Logger } from '@dtm-ts/telemetry';
import { driverObserver } from './observer';
import { alertObserver, composeObservers } from './alerts';
import { createBranchTransport, createOutboundPolicy } from './branch-transport';

/** Everything a role needs, wired from one config. `close` releases it in reverse order. */
export interface Infra {
  readonly config: Config;
  readonly logger: Logger;
  /** The shared Redis connection (read model, leases; tools that need Redis itself, like the rebuild's scratch copy). */
  readonly redis: Redis;
  readonly log: EventLog & EventFeed;
  readonly topics: TopicLog;
  readonly policy: Policy;
  readonly readModel: ReadModel;
  /** Asks for passes (adds pass jobs). */
  readonly scheduler: PassScheduler;
  /** Where a worker takes its pass jobs from. */
  readonly passJobs: PassJobSource;
  /**
   * A new live subscription to the feed, for one purpose (`read-model`): a consumer group of the Redis feed, or
   * on EventStoreDB a catch-up subscription to `$all` with its checkpoint in Redis, shared by every worker.
   */
  subscribeFeed(purpose: string, onError: (err: unknown) => void): FeedSubscription;
  readonly transport: ClosableBranchTransport;
  /** Which hosts and topics branch calls may reach; the API checks submitted URLs against it. */
  readonly outbound: OutboundPolicy;
  readonly driver: Driver;
  readonly clock: Clock;
  readonly metrics: DtmMetrics;
  /** Redis log with a retention: moves finished streams to the archive (the worker runs it). */
  readonly archiver: RedisArchiver | undefined;
  close(): Promise<void>;
}

/** Parses REDIS_URL into ioredis options, so that BullMQ can open its own connections from them. */
const optionsFromUrl = (url: string): RedisOptions => {
  const u = new URL(url);
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
  };
};

/**
 * Connects to Redis (REDIS_URL, or a managed redis-server under DATA_DIR when `manageRedis`),
 * and builds the ports. `maxRetriesPerRequest: null` makes commands wait out a Redis restart
 * instead of failing, which BullMQ requires and the engine wants.
 */
export const createInfra = async (
  config: Config,
  logger: Logger,
  opts: { manageRedis?: boolean; clock?: Clock; transport?: ClosableBranchTransport } = {},
): Promise<Infra> => {
  let stopManaged: (() => Promise<void>) | undefined;
  let base: RedisOptions;
  if (config.redisUrl) {
    base = optionsFromUrl(config.redisUrl);
  } else if (opts.manageRedis) {
    const managed = await startManagedRedis({ dataDir: config.dataDir, log: (msg) => logger.info(msg) });
    stopManaged = () => managed.stop();
    base = { path: managed.path };
  } else {
    throw new Error('REDIS_URL is required for this role (only `npm start` runs its own redis-server)');
  }
  const redisOptions: RedisOptions = { ...base, maxRetriesPerRequest: null, enableReadyCheck: true };
  // Auto-pipelining batches the commands of one tick into one write: most of the engine's Redis
  // cost was a syscall per command. BullMQ gets its own plain connections from `redisOptions`.
  const redis = new Redis({ ...redisOptions, enableAutoPipelining: true });
  redis.on('error', (err) => logger.warn({ err: err.message }, 'redis connection error'));
  const clock = opts.clock ?? systemClock;
  const shape = { prefix: config.prefix, partitions: config.partitions };
  // EVENT_STORE=esdb: the log lives in EventStoreDB; the read model, queues and leases stay in Redis.
  const esdb = config.eventStore === 'esdb' ? EventStoreDBClient.connectionString(config.esdbUrl ?? '') : undefined;
  const esdbLog = esdb && new EsdbEventLog(esdb, { prefix: config.prefix });
  // The Redis log moves finished streams to an archive after the retention (EventStoreDB keeps its own log).
  const archive =
    !esdb && config.finishedRetentionS > 0
      ? new FileArchive(config.archiveDir ?? join(config.dataDir, 'archive'))
      : undefined;
  const redisLog = new RedisEventLog(redis, { ...shape, archive });
  const log = esdbLog ?? redisLog;
  const readModel = new RedisReadModel(redis, { ...shape, archive: archive !== undefined });
  const archiver = archive && new RedisArchiver(redis, archive, shape);
  const queueName = `${config.prefix}-passes`;
  const queue = new Queue(queueName, { connection: redisOptions });
  queue.on('error', (err) => logger.warn({ err: err.message }, 'queue error'));
  const scheduler = new BullPassScheduler(queue, {
    clock,
    retries: { attempts: config.passJobAttempts, backoffMs: config.passJobBackoffMs },
  });
  const passJobs = new BullPassJobSource({
    queueName,
    connection: redisOptions,
    concurrency: config.workerConcurrency,
    lockMs: config.jobLockMs,
    onError: (err, job) =>
      job
        ? logger.warn({ gid: job.gid, err: err.message }, 'pass job threw; it runs again after a backoff')
        : logger.warn({ err: err.message }, 'pass job queue error'),
  });
  const consumer = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const subscribeFeed = (purpose: string, onError: (err: unknown) => void): FeedSubscription =>
    esdb
      ? new EsdbFeedSubscriber(esdb, {
          prefix: config.prefix,
          checkpoints: redisCheckpointStore(redis, `${config.prefix}:esdb-checkpoint:${purpose}`),
          onError,
        })
      : new RedisFeedSubscriber(redis, { ...shape, group: purpose, consumer, onError });
  // HTTP, plus Kafka for `kafka://` msg steps when KAFKA_BROKERS is set.
  const outbound = createOutboundPolicy(config);
  const transport = opts.transport ?? createBranchTransport(config, logger, outbound);
  const policy: Policy = {
    retryIntervalS: config.retryIntervalS,
    timeoutToFailS: config.timeoutToFailS,
    backoffCapS: config.backoffCapS,
  };
  const stopTracing = initTracing({
    serviceName: logger.bindings().service ? String(logger.bindings().service) : 'dtm-ts',
    exporter: config.tracesExporter,
    otlpEndpoint: config.otlpEndpoint,
    sampleRatio: config.traceSampleRatio,
  });
  const metrics = initMetrics();
  // Read at scrape time only.
  metrics.gauge('dtm_queue_jobs', 'Pass jobs in the queue, by state', async () => {
    const counts = await queue.getJobCounts('waiting', 'delayed', 'active', 'failed');
    return Object.entries(counts).map(([state, value]) => ({ value, attributes: { state } }));
  });
  metrics.gauge(
    'dtm_oldest_overdue_seconds',
    'How late the most overdue unfinished transaction is (0: none)',
    async () => {
      const now = clock.now();
      const [oldest] = await readModel.overdue(now, 1);
      return [{ value: oldest ? Math.max(0, (now - oldest.wakeAt) / 1000) : 0 }];
    },
  );
  const driver = new Driver({
    observer: composeObservers(
      driverObserver(metrics, logger, () => clock.now()),
      alertObserver({
        redis,
        prefix: config.prefix,
        limit: config.alertRetryLimit,
        webhook: config.alertWebhook,
        logger,
        now: () => clock.now(),
      }),
    ),
    log,
    transport,
    scheduler,
    clock,
    policy,
    requestTimeoutS: config.requestTimeoutS,
    inlinePasses: config.inlinePasses,
    // The Redis log writes the read model with the driver's appends: with the retention the projector uses.
    retentionMs: config.finishedRetentionS * 1000,
    lease: new RedisPassLease(redis, shape),
    // As long as a BullMQ job lock: a dead driver's transaction is free again when its job is.
    leaseTtlMs: config.jobLockMs,
    onInlineError: (gid, err) =>
      logger.error({ gid, err }, 'inline pass failed and could not be queued; the sweep will pick it up'),
  });
  return {
    config,
    logger,
    redis,
    log,
    topics: esdbLog ? esdbTopicLog(esdbLog) : redisTopicLog(redisLog),
    policy,
    readModel,
    scheduler,
    passJobs,
    subscribeFeed,
    transport,
    outbound,
    driver,
    clock,
    metrics,
    archiver,
    async close() {
      await driver.drain();
      await queue.close();
      await stopTracing();
      await transport.close();
      await esdb?.dispose();
      redis.disconnect();
      if (stopManaged) await stopManaged();
    },
  };
};
