import { Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { PassJobData, PassJobSource } from '@dtm-ts/ports';

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
}

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
    const workers = opts.queueNames.map((name) => {
      const worker = new Worker<PassJobData>(name, (job: Job<PassJobData>) => handler(job.data), {
        connection: opts.connection,
        concurrency,
        lockDuration: opts.lockMs,
        stalledInterval: Math.max(1000, Math.floor(opts.lockMs / 2)),
        maxStalledCount: STALLED_RUNS_ALLOWED,
        autorun: true,
      });
      worker.on('error', (err) => opts.onError?.(err));
      worker.on('failed', (job, err) => opts.onError?.(err, job?.data));
      return worker;
    });
    return { close: async () => void (await Promise.all(workers.map((w) => w.close()))) };
  }
}
