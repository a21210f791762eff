import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { Worker, type Job } from 'bullmq';
import {
  EsdbFeedSubscriber,
  RedisFeedSubscriber,
  redisCheckpointStore,
  type FeedSubscription,
  type PassJobData,
} from '@dtm-ts/adapters';
import type { Infra } from '@dtm-ts/runtime';
import { FoldCache, projectEntries } from './projector';
import { sweepOnce } from './sweep';

export interface RunningWorker {
  /** Runs the recovery sweep now (tests and admin use). */
  sweep(): Promise<number>;
  /** Drops read-model index entries that retention expired; returns how many. */
  compact(): Promise<number>;
  close(): Promise<void>;
}

/**
 * A stateless worker: drives passes from the queue, projects the log into the read model,
 * and sweeps for transactions left without a pending pass. Run any number of them.
 */
export const startWorker = async (infra: Infra): Promise<RunningWorker> => {
  const { config, logger, driver, log, readModel, scheduler, clock } = infra;
  const consumer = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;

  const worker = new Worker<PassJobData>(
    infra.queueName,
    async (job: Job<PassJobData>) => {
      const pass = await driver.runPass(job.data.gid, { notBefore: job.data.at, trace: job.data.trace });
      return { status: pass.state.status, version: pass.version };
    },
    {
      connection: infra.redisOptions,
      concurrency: config.workerConcurrency,
      lockDuration: config.jobLockMs,
      stalledInterval: Math.max(1000, Math.floor(config.jobLockMs / 2)),
      // A pass is safe to run again (invariant 4): never give up on a stalled one.
      maxStalledCount: 1_000_000,
      autorun: true,
    },
  );
  worker.on('error', (err) => logger.warn({ err: err.message }, 'worker error'));
  worker.on('failed', (job, err) =>
    logger.warn({ gid: job?.data.gid, err: err.message }, 'pass failed; the sweep will retry it'),
  );

  const onProjectionError = (err: unknown): void =>
    logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'projection failed; will retry');
  // On EventStoreDB: a catch-up subscription to $all, its checkpoint in Redis (shared by every worker).
  const projector: FeedSubscription = infra.esdb
    ? new EsdbFeedSubscriber(infra.esdb, {
        prefix: config.prefix,
        checkpoints: redisCheckpointStore(infra.redis, `${config.prefix}:esdb-checkpoint:read-model`),
        onError: onProjectionError,
      })
    : new RedisFeedSubscriber(infra.redis, {
        prefix: config.prefix,
        partitions: config.partitions,
        group: 'read-model',
        consumer,
        onError: onProjectionError,
      });
  const retentionMs = config.finishedRetentionS * 1000;
  const cache = new FoldCache();
  await projector.start((entries) =>
    projectEntries(
      { log, readModel, requestTimeoutMs: config.requestTimeoutS * 1000, policy: infra.policy, retentionMs, cache },
      entries,
    ),
  );
  // Index entries of transactions that retention removed; a transaction ends after it starts, so
  // only those created more than the retention ago can be gone. Then their streams go to the archive.
  const compact = async (): Promise<number> => {
    if (retentionMs <= 0) return 0;
    const dropped = await readModel.compact(clock.now() - retentionMs);
    await infra.archiver?.archiveDue(clock.now());
    return dropped;
  };
  let compacting = false;
  const compactTimer = setInterval(
    () => {
      if (compacting) return;
      compacting = true;
      compact()
        .catch((err: unknown) =>
          logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'read-model compaction failed'),
        )
        .finally(() => (compacting = false));
    },
    Math.max(1000, Math.min(retentionMs || 60_000, 60_000)),
  );
  compactTimer.unref();

  const sweep = (): Promise<number> =>
    sweepOnce({ readModel, scheduler, now: () => clock.now(), graceMs: config.sweepGraceMs });
  let sweeping = false;
  const timer = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    sweep()
      .then((n) => n > 0 && logger.info({ count: n }, 'sweep re-enqueued overdue transactions'))
      .catch((err: unknown) => logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'sweep failed'))
      .finally(() => (sweeping = false));
  }, config.sweepIntervalMs);
  timer.unref();

  return {
    sweep,
    compact,
    async close() {
      clearInterval(timer);
      clearInterval(compactTimer);
      await worker.close();
      await projector.stop();
    },
  };
};
