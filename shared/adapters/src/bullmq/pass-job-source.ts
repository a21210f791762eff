import { Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { PassJobData, PassJobSource } from '@dtm-ts/ports';
import { settledWithin } from '../settled-within';

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
}

/** The ioredis clients a BullMQ worker owns; BullMQ keeps them private, so they are reached structurally. */
interface WorkerConnections {
  readonly connection?: { readonly _client?: { disconnect(): void } };
  readonly blockingConnection?: { readonly _client?: { disconnect(): void } };
}

/**
 * Closes `worker`, waiting at most `graceMs` for it. BullMQ's close waits for the running jobs and for each
 * connection's QUIT, and a connection parked in reconnecting (its Redis or cluster node gone, or restarted
 * without the worker's state) never answers: the worker's clients are then disconnected, which is what a
 * crash would do. Resolves to whether the close was clean.
 */
const closeWithin = async (worker: Worker<PassJobData>, graceMs: number): Promise<boolean> => {
  const closing = worker.close();
  if (await settledWithin(closing, graceMs)) return true;
  const { connection, blockingConnection } = worker as unknown as WorkerConnections;
  blockingConnection?._client?.disconnect();
  connection?._client?.disconnect();
  return false;
};

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
    const graceMs = opts.closeGraceMs ?? 5_000;
    return {
      close: async () => {
        const clean = await Promise.all(workers.map((w) => closeWithin(w, graceMs)));
        const cut = workers.filter((_, i) => !clean[i]).map((w) => w.name);
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
