import { Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { PassJobData, PassJobSource } from '@dtm-ts/ports';
import type { RedisClient } from '../redis/client';
import { closeOrCut, settledWithin } from '../settled-within';
import { StuckWorkerWatchdog } from './stuck-worker-watchdog';

/** Times a stalled pass job is handed to another worker: in effect always, since a pass is safe to repeat. */
const STALLED_RUNS_ALLOWED = 1_000_000;

/** Options of {@link BullPassJobSource}. */
export interface BullPassJobSourceOptions {
  /** The pass queues (passQueueNames): one BullMQ worker each. */
  readonly queueNames: readonly string[];
  /** Options BullMQ opens its own connections from, or a Redis Cluster client it duplicates. */
  readonly connection: ConnectionOptions;
  /** Pass jobs one process runs at once, shared evenly by its queues' workers (gids spread evenly over them). */
  readonly concurrency: number;
  /** Lock of a running pass job; a dead worker's job is handed to another about this long after it died. */
  readonly lockMs: number;
  /** Told of queue errors (a lost connection) and of pass jobs whose run threw. */
  readonly onError?: (err: Error, job?: PassJobData) => void;
  /**
   * How long `close` lets the running pass jobs finish before it cuts the workers' connections (default 5 s).
   * A cut job is as one whose worker died: its lock runs out and another worker runs the pass again.
   */
  readonly closeGraceMs?: number;
  /**
   * A queue's worker that took no job for this long, runs none, and has jobs ready is replaced by a fresh one (see
   * StuckWorkerWatchdog). Default: twice the lock. 0: never.
   */
  readonly stuckAfterMs?: number;
  /** Told when a stuck worker was replaced. */
  readonly onRestart?: (queue: string) => void;
  /**
   * A connection of its own for a worker that replaces a stuck one, and how to let it go once that one is replaced
   * in turn (a Redis Cluster client: the shared one may be the connection that got stuck). Default: `connection`.
   */
  readonly freshConnection?: () => { readonly connection: ConnectionOptions; readonly release: () => void };
}

/** The ioredis clients a BullMQ worker owns; BullMQ keeps them private, so they are reached structurally. */
interface WorkerConnections {
  readonly connection?: { readonly _client?: { disconnect(): void } };
  readonly blockingConnection?: { readonly _client?: { disconnect(): void } };
}

/**
 * Whether jobs are ready for `worker`: waiting, or delayed past their time (BullMQ scores a delayed job by its time
 * × 0x1000). Asked on the worker's own non-blocking connection, within `ms`: no answer counts as yes, since the
 * worker's connection is then as stuck as the worker.
 */
const hasReadyJobs = async (worker: Worker<PassJobData>, ms: number): Promise<boolean> => {
  const probe = (async () => {
    // BullMQ's own client type lists few commands; it is an ioredis client (or Cluster).
    const client = (await worker.client) as unknown as RedisClient;
    const [waiting, due] = await Promise.all([
      client.llen(worker.keys.wait!),
      client.zrangebyscore(worker.keys.delayed!, 0, Date.now() * 0x1000, 'LIMIT', 0, 1),
    ]);
    return waiting > 0 || due.length > 0;
  })();
  if (!(await settledWithin(probe, ms))) {
    probe.catch(() => undefined);
    return true;
  }
  return probe;
};

/**
 * Closes `worker`, waiting at most `graceMs` for it. BullMQ's close waits for the running jobs and for each
 * connection's QUIT, and a connection parked in reconnecting (its Redis or cluster node gone, or restarted
 * without the worker's state) never answers: the worker's clients are then disconnected, which is what a
 * crash would do. Resolves to whether the close was clean.
 */
const closeWithin = (worker: Worker<PassJobData>, graceMs: number): Promise<boolean> =>
  closeOrCut(
    () => worker.close(),
    () => {
      const { connection, blockingConnection } = worker as unknown as WorkerConnections;
      blockingConnection?._client?.disconnect();
      connection?._client?.disconnect();
    },
    graceMs,
  );

/**
 * {@link PassJobSource} over a BullMQ queue (the one {@link BullPassScheduler} adds to). A job whose handler
 * rejects is retried with the attempts and backoff it was added with; a stalled job (its worker died or
 * froze past the lock) is run again, however often: a pass is safe to repeat (DESIGN invariant 4).
 */
export class BullPassJobSource implements PassJobSource {
  constructor(private readonly opts: BullPassJobSourceOptions) {}

  consume(handler: (job: PassJobData) => Promise<void>): { close(): Promise<void> } {
    const { opts } = this;
    const concurrency = Math.max(1, Math.ceil(opts.concurrency / opts.queueNames.length));
    const graceMs = opts.closeGraceMs ?? 5_000;
    /** Per queue: its current worker, its last sign of life, and the jobs its handler is running. */
    const slots = opts.queueNames.map((name) => ({
      name,
      worker: undefined as unknown as Worker<PassJobData>,
      seen: 0,
      running: 0,
      release: undefined as (() => void) | undefined,
    }));
    const startWorker = (slot: (typeof slots)[number], connection: ConnectionOptions = opts.connection): void => {
      const worker = new Worker<PassJobData>(
        slot.name,
        async (job: Job<PassJobData>) => {
          slot.running++;
          try {
            await handler(job.data);
          } finally {
            slot.running--;
            slot.seen = Date.now();
          }
        },
        {
          connection,
          concurrency,
          lockDuration: opts.lockMs,
          stalledInterval: Math.max(1000, Math.floor(opts.lockMs / 2)),
          maxStalledCount: STALLED_RUNS_ALLOWED,
          autorun: true,
        },
      );
      const alive = (): void => void (slot.seen = Date.now());
      worker.on('active', alive);
      worker.on('drained', alive);
      worker.on('ready', alive);
      worker.on('error', (err) => opts.onError?.(err));
      worker.on('failed', (job, err) => opts.onError?.(err, job?.data));
      slot.worker = worker;
      slot.seen = Date.now();
    };
    for (const slot of slots) startWorker(slot);

    const stuckAfterMs = opts.stuckAfterMs ?? 2 * opts.lockMs;
    const watchdog =
      stuckAfterMs > 0
        ? new StuckWorkerWatchdog(
            slots.map((slot) => ({
              // A worker running jobs is busy, not stuck, however long they take.
              lastActivity: () => (slot.running > 0 ? Date.now() : slot.seen),
              hasBacklog: () => hasReadyJobs(slot.worker, graceMs),
              restart: async () => {
                const old = slot.worker;
                const oldRelease = slot.release;
                const fresh = opts.freshConnection?.();
                startWorker(slot, fresh?.connection);
                slot.release = fresh?.release;
                await closeWithin(old, graceMs);
                oldRelease?.();
              },
            })),
            {
              checkMs: Math.max(1000, Math.floor(stuckAfterMs / 2)),
              quietMs: stuckAfterMs,
              onRestart: (i) => opts.onRestart?.(slots[i]!.name),
              onError: (err) => opts.onError?.(err instanceof Error ? err : new Error(String(err))),
            },
          )
        : undefined;
    watchdog?.start();
    return {
      close: async () => {
        watchdog?.stop();
        const clean = await Promise.all(slots.map((slot) => closeWithin(slot.worker, graceMs)));
        for (const slot of slots) slot.release?.();
        const cut = slots.filter((_, i) => !clean[i]).map((slot) => slot.name);
        if (cut.length)
          opts.onError?.(
            new Error(
              `pass workers ${cut.join(', ')} did not close within ${graceMs} ms (a job still running or a connection ` +
                'not answering): their connections were cut, and their jobs run again elsewhere once their locks expire',
            ),
          );
      },
    };
  }
}
