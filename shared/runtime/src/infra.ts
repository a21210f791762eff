import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Queue, type ConnectionOptions } from 'bullmq';
import { EventStoreDBClient } from '@eventstore/db-client';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { join } from 'node:path';
import {
  BullPassJobSource,
  BullPassScheduler,
  FileArchive,
  RedisArchiver,
  EsdbEventLog,
  EsdbFeedSubscriber,
  LeasedFeedSubscription,
  esdbTopicLog,
  type ClosableBranchTransport,
  type OutboundPolicy,
  RedisEventLog,
  RedisFeedSubscriber,
  RedisPassLease,
  RedisReadModel,
  redisTopicLog,
  startManagedRedis,
  CLUSTER_CLIENT_OPTIONS,
  passQueueNames,
  passQueueOf,
  closeOrCut,
  settledWithin,
  type RedisClient,
} from '@dtm-ts/adapters';
import type { Config, RedisClusterSettings } from '@dtm-ts/config';
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

/**
 * How long a shutdown step may wait for work under way (inline passes, running pass jobs, a queue's QUIT) before
 * it cuts it. The steps run one after another and the process exits by force after 15 s (runMain).
 */
export const CLOSE_GRACE_MS = 4_000;

/** Everything a role needs, wired from one config. `close` releases it in reverse order. */
export interface Infra {
  readonly config: Config;
  readonly logger: Logger;
  /**
   * The shared Redis connection (read model, leases; tools that need Redis itself, like the rebuild's scratch
   * copy): a Cluster client with REDIS_CLUSTER_NODES.
   */
  readonly redis: RedisClient;
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
   * on EventStoreDB a catch-up subscription to `$all` run by whichever worker holds the purpose's Redis lease
   * (the others stand by), with its checkpoint in Redis saved only by the lease holder.
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

/** Options every node of a cluster is opened with: the URL form's credentials and TLS carry over to each. */
const clusterNodeOptions = (c: RedisClusterSettings): RedisOptions => ({
  username: c.username,
  password: c.password,
  tls: c.tls ? {} : undefined,
  maxRetriesPerRequest: null,
});

/** The process's Redis: the engine's client, what BullMQ connects with, and how to let both go. */
interface RedisConnections {
  readonly redis: RedisClient;
  readonly bull: ConnectionOptions;
  /** A BullMQ connection of its own, for a queue or worker that replaces one whose connection got stuck. */
  readonly freshBull: () => { readonly connection: ConnectionOptions; readonly release: () => void };
  close(): void;
}

/**
 * One Redis (REDIS_URL, or the managed one): BullMQ opens its own plain connections from the same options.
 * A cluster (REDIS_CLUSTER_NODES): BullMQ gets a Cluster client of its own (without auto-pipelining, which its
 * blocking commands do not want) and duplicates it for its workers.
 */
const connectRedis = (config: Config, base: RedisOptions | undefined): RedisConnections => {
  if (config.redisCluster) {
    const nodes = config.redisCluster.nodes.map((n) => ({ host: n.host, port: n.port }));
    const options: ClusterOptions = {
      redisOptions: clusterNodeOptions(config.redisCluster),
      enableReadyCheck: true,
      // ioredis refreshes its slot map on a MOVED answer to a single command, but not on MOVED answers inside an
      // (auto-)pipeline, and has no periodic refresh unless asked: after a master restarts or slots move, commands
      // would keep going to the wrong node. Asked every 2 s, the map converges within that.
      slotsRefreshInterval: 2_000,
    };
    const redis = new Cluster(nodes, { ...options, ...CLUSTER_CLIENT_OPTIONS });
    const bull = new Cluster(nodes, options);
    const fresh = new Set<Cluster>();
    const freshBull = () => {
      const c = new Cluster(nodes, options);
      fresh.add(c);
      return { connection: c, release: () => void (fresh.delete(c), c.disconnect()) };
    };
    const close = (): void => {
      redis.disconnect();
      bull.disconnect();
      for (const c of fresh) c.disconnect();
    };
    return { redis, bull, freshBull, close };
  }
  const redisOptions: RedisOptions = { ...base, maxRetriesPerRequest: null, enableReadyCheck: true };
  // Auto-pipelining batches the commands of one tick into one write: most of the engine's Redis
  // cost was a syscall per command. BullMQ gets its own plain connections from `redisOptions`.
  const redis = new Redis({ ...redisOptions, enableAutoPipelining: true });
  // BullMQ opens (and closes) its own connections from options: every queue and worker has fresh ones already.
  const freshBull = () => ({ connection: redisOptions, release: () => undefined });
  return { redis, bull: redisOptions, freshBull, close: () => redis.disconnect() };
};

/**
 * Connects to Redis (REDIS_URL, REDIS_CLUSTER_NODES, or a managed redis-server under DATA_DIR when
 * `manageRedis`), and builds the ports. `maxRetriesPerRequest: null` makes commands wait out a Redis restart
 * instead of failing, which BullMQ requires and the engine wants.
 */
export const createInfra = async (
  config: Config,
  logger: Logger,
  opts: {
    manageRedis?: boolean;
    /** The unix socket of a redis-server another process manages (the primary of TM_PROCESSES). */
    redisSocket?: string;
    clock?: Clock;
    transport?: ClosableBranchTransport;
  } = {},
): Promise<Infra> => {
  let stopManaged: (() => Promise<void>) | undefined;
  let base: RedisOptions | undefined;
  if (config.redisUrl) {
    base = optionsFromUrl(config.redisUrl);
  } else if (config.redisCluster) {
    base = undefined;
  } else if (opts.redisSocket) {
    base = { path: opts.redisSocket };
  } else if (opts.manageRedis) {
    const managed = await startManagedRedis({ dataDir: config.dataDir, log: (msg) => logger.info(msg) });
    stopManaged = () => managed.stop();
    base = { path: managed.path };
  } else {
    throw new Error(
      'REDIS_URL or REDIS_CLUSTER_NODES is required for this role (only `npm start` runs its own redis-server)',
    );
  }
  const connections = connectRedis(config, base);
  const { redis } = connections;
  redis.on('error', (err: Error) => logger.warn({ err: err.message }, 'redis connection error'));
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
  // A cluster spreads the pass queues over its masters: one per partition unless PASS_QUEUES says otherwise.
  const queueLayout = {
    prefix: config.prefix,
    partitions: config.partitions,
    queues: config.passQueues ?? (config.redisCluster ? config.partitions : 1),
    hashTagged: config.redisCluster !== undefined,
  };
  const openQueue = (name: string, connection: ConnectionOptions): Queue => {
    const queue = new Queue(name, { connection });
    queue.on('error', (err) => logger.warn({ err: err.message }, 'queue error'));
    return queue;
  };
  /** Closes a queue within the grace, else disconnects it. */
  const closeQueue = (q: Queue): Promise<boolean> =>
    closeOrCut(
      () => q.close(),
      () => void q.disconnect().catch(() => undefined),
      CLOSE_GRACE_MS,
    );
  const queues = passQueueNames(queueLayout).map((name) => openQueue(name, connections.bull));
  // A queue whose add went unanswered (its connection parked on a cluster node that died) is replaced by one on a
  // connection of its own, at most every 10 s; the old one is let go, and its own connection with it.
  const replacedAt = new Map<string, number>();
  const ownConnection = new Map<Queue, () => void>();
  const replaceQueue = (stuck: Queue): void => {
    const i = queues.indexOf(stuck);
    if (i < 0 || Date.now() - (replacedAt.get(stuck.name) ?? 0) < 10_000) return;
    replacedAt.set(stuck.name, Date.now());
    const fresh = connections.freshBull();
    const queue = openQueue(stuck.name, fresh.connection);
    ownConnection.set(queue, fresh.release);
    queues[i] = queue;
    logger.warn({ queue: stuck.name }, 'pass queue did not answer; replaced it with one on a fresh connection');
    const release = ownConnection.get(stuck);
    ownConnection.delete(stuck);
    void closeQueue(stuck).then(() => release?.());
  };
  const scheduler = new BullPassScheduler((gid) => queues[passQueueOf(gid, queueLayout)]!, {
    clock,
    retries: { attempts: config.passJobAttempts, backoffMs: config.passJobBackoffMs },
    addTimeoutMs: 5_000,
    onStuck: replaceQueue,
  });
  const passJobs = new BullPassJobSource({
    queueNames: queues.map((q) => q.name),
    connection: connections.bull,
    concurrency: config.workerConcurrency,
    lockMs: config.jobLockMs,
    closeGraceMs: CLOSE_GRACE_MS,
    freshConnection: connections.freshBull,
    onRestart: (queue) =>
      logger.warn({ queue }, 'pass worker took no job while jobs waited for it; replaced it with a fresh one'),
    onError: (err, job) =>
      job
        ? logger.warn({ gid: job.gid, err: err.message }, 'pass job threw; it runs again after a backoff')
        : logger.warn({ err: err.message }, 'pass job queue error'),
  });
  const consumer = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  // EventStoreDB: the leased projections of this process, for the dtm_projection_lease_held gauge.
  const leased = new Map<string, LeasedFeedSubscription>();
  const leasedFeed = (purpose: string, sub: LeasedFeedSubscription): LeasedFeedSubscription => {
    leased.set(purpose, sub);
    return sub;
  };
  const subscribeFeed = (purpose: string, onError: (err: unknown) => void): FeedSubscription =>
    esdb
      ? leasedFeed(
          purpose,
          new LeasedFeedSubscription({
            redis,
            prefix: config.prefix,
            purpose,
            owner: consumer,
            ttlMs: config.projectionLeaseMs,
            subscribe: (checkpoints) => new EsdbFeedSubscriber(esdb, { prefix: config.prefix, checkpoints, onError }),
            onLease: (held) =>
              logger.info(
                { purpose },
                held ? 'projecting the log (took the lease)' : 'standing by (lease lost or given up)',
              ),
            onError,
          }),
        )
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
    const totals: Record<string, number> = {};
    for (const queue of queues) {
      const counts = await queue.getJobCounts('waiting', 'delayed', 'active', 'failed');
      for (const [state, n] of Object.entries(counts)) totals[state] = (totals[state] ?? 0) + n;
    }
    return Object.entries(totals).map(([state, value]) => ({ value, attributes: { state } }));
  });
  if (esdb)
    metrics.gauge(
      'dtm_projection_lease_held',
      'EventStoreDB: 1 on the one worker projecting the log into the read model (holding the lease), else 0',
      () =>
        Promise.resolve([...leased].map(([purpose, sub]) => ({ value: sub.active ? 1 : 0, attributes: { purpose } }))),
    );
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
      // Each wait is bounded: an inline pass or a queue's QUIT stuck on a connection that never answers is cut
      // when the connections close below, as a crash would cut it (the sweep and the job locks recover it).
      if (!(await settledWithin(driver.drain(), CLOSE_GRACE_MS)))
        logger.warn({ graceMs: CLOSE_GRACE_MS }, 'inline passes still running at shutdown; cutting them');
      await Promise.all(
        queues.map(async (q) => {
          if (!(await closeQueue(q)))
            logger.warn({ queue: q.name, graceMs: CLOSE_GRACE_MS }, 'pass queue did not close; disconnected it');
        }),
      );
      await stopTracing();
      await transport.close();
      await esdb?.dispose();
      connections.close();
      if (stopManaged) await stopManaged();
    },
  };
};
