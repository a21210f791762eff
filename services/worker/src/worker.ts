import { settledWithin } from '@dtm-ts/adapters';
import { CLOSE_GRACE_MS, type Infra } from '@dtm-ts/runtime';
import { every } from './every';
import { passJobHandler } from './jobs/pass-job';
import { startProjector } from './projector/start-projector';
import { sweepOnce } from './sweep';

export interface RunningWorker {
  /** Runs the recovery sweep now (tests and admin use). */
  sweep(): Promise<number>;
  /** Drops read-model index entries that retention expired; returns how many. */
  compact(): Promise<number>;
  close(): Promise<void>;
}

/** How often the read model drops what retention removed: at most a minute, at least a second. */
const compactEveryMs = (retentionMs: number): number => Math.max(1000, Math.min(retentionMs || 60_000, 60_000));

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * A stateless worker: runs pass jobs from the queue, projects the log into the read model, and sweeps for
 * transactions left without a pending pass job. Run any number of them.
 */
export const startWorker = async (infra: Infra): Promise<RunningWorker> => {
  const { config, logger, driver, log, readModel, scheduler, clock } = infra;
  const passJobs = infra.passJobs.consume(passJobHandler(driver));

  const feed = infra.subscribeFeed('read-model', (err) =>
    logger.warn({ err: message(err) }, 'projection failed; will retry'),
  );
  const retentionMs = config.finishedRetentionS * 1000;
  await startProjector(feed, {
    log,
    readModel,
    requestTimeoutMs: config.requestTimeoutS * 1000,
    policy: infra.policy,
    retentionMs,
  });

  // Index entries of transactions that retention removed; a transaction ends after it starts, so
  // only those created more than the retention ago can be gone. Then their streams go to the archive.
  const compact = async (): Promise<number> => {
    if (retentionMs <= 0) return 0;
    const dropped = await readModel.compact(clock.now() - retentionMs);
    await infra.archiver?.archiveDue(clock.now());
    return dropped;
  };
  const compacting = every(
    compactEveryMs(retentionMs),
    compact,
    (err) => logger.warn({ err: message(err) }, 'read-model compaction failed'),
    { maxRunMs: 10 * 60_000 },
  );

  const sweep = async (): Promise<number> => {
    const n = await sweepOnce({ readModel, scheduler, now: () => clock.now(), graceMs: config.sweepGraceMs });
    if (n > 0) logger.info({ count: n }, 'sweep queued pass jobs for overdue transactions');
    return n;
  };
  // A sweep stuck on a command that never answers must not end recovery: the next ones go on without it.
  const sweeping = every(config.sweepIntervalMs, sweep, (err) => logger.warn({ err: message(err) }, 'sweep failed'), {
    maxRunMs: Math.max(10_000, 20 * config.sweepIntervalMs),
  });

  return {
    sweep,
    compact,
    async close() {
      await sweeping.stop();
      await compacting.stop();
      await passJobs.close();
      // A projection handler stuck on a Redis that does not answer is cut when the connections close next.
      if (!(await settledWithin(feed.stop(), CLOSE_GRACE_MS)))
        logger.warn({ graceMs: CLOSE_GRACE_MS }, 'projection still running at shutdown; cutting it');
    },
  };
};
