import type { Queue } from 'bullmq';
import type { Gid } from '@dtm-ts/domain';
import { systemClock, type Clock, type PassJobData, type PassScheduler } from '@dtm-ts/ports';
import { partitionOf } from '../redis/keys';
import { settledWithin } from '../settled-within';

/** BullMQ name of a pass job. */
export const PASS_JOB_NAME = 'pass';

/** How BullMQ retries a pass job whose run threw (say Redis restarting), before the recovery sweep takes over. */
export interface PassJobRetries {
  /** Runs of one pass job, the first included. */
  readonly attempts: number;
  /** Delay before the second run; it doubles for each one after. */
  readonly backoffMs: number;
}

/** In a `u` regular expression, `\p{Cs}` matches only surrogates that are not half of a pair. */
const LONE_SURROGATE = /\p{Cs}/gu;

/**
 * The BullMQ job id of a pass: `<gid>.<key>`, percent-encoded. BullMQ rejects ':' in custom ids
 * (it separates key segments), and '.' in the gid is escaped too so that no gid/key pair can
 * produce another pair's id (`a.b`+`c` vs `a`+`b.c`). A lone surrogate (which cannot be encoded) counts as U+FFFD.
 */
export const passJobId = (gid: Gid, key: string): string =>
  `${encodeURIComponent(gid.replace(LONE_SURROGATE, '\uFFFD')).replaceAll('.', '%2E')}.${key.replaceAll('%', '%25').replaceAll(':', '%3A')}`;

/** How pass jobs are spread over BullMQ queues. */
export interface PassQueueLayout {
  /** KEY_PREFIX. */
  readonly prefix: string;
  /** LOG_PARTITIONS: a gid's queue follows its partition. */
  readonly partitions: number;
  /** Queues; queue n serves partitions n, n + queues, n + 2 × queues, … */
  readonly queues: number;
  /** Give every name a hash tag (Redis Cluster: a BullMQ script's keys must share one slot). */
  readonly hashTagged: boolean;
}

/**
 * The names of the pass queues. One untagged queue is `<prefix>-passes`, as before clusters. Tagged, queue n is
 * `<prefix>-passes-{pN}`: its keys share the hash slot of partition n's keys, so the queues spread over the
 * masters exactly as the partitions do, and a queue lives with the first partition it serves.
 */
export const passQueueNames = (layout: PassQueueLayout): string[] =>
  !layout.hashTagged && layout.queues === 1
    ? [`${layout.prefix}-passes`]
    : Array.from({ length: layout.queues }, (_, n) => `${layout.prefix}-passes-{p${n}}`);

/** Which of the pass queues holds `gid`'s jobs: the index in {@link passQueueNames}. */
export const passQueueOf = (gid: Gid, layout: Pick<PassQueueLayout, 'partitions' | 'queues'>): number =>
  partitionOf(gid, layout.partitions) % layout.queues;

/**
 * {@link PassScheduler} over a BullMQ queue: one delayed job per requested pass, deduplicated by
 * job id.
 *
 * Idempotency comes from BullMQ itself (checked in bullmq 5.81.5, `commands/addStandardJob-9.lua`,
 * `addDelayedJob-6.lua`, `addPrioritizedJob-9.lua`, `includes/handleDuplicatedJob.lua`): adding a
 * job with a custom id first checks `EXISTS <prefix>:<queue>:<jobId>`; if the job
 * hash exists, whatever its state (waiting, delayed, prioritized, active, or kept after failing),
 * they only emit a `duplicated` event and return the existing id, leaving its data and delay
 * untouched. So a second request with the same gid and key is dropped while the first is pending
 * or running. Completed and finally-failed passes are removed at once, which frees their id for the
 * recovery sweep; callers vary `key` between passes (by event-log version).
 */
export class BullPassScheduler implements PassScheduler {
  private readonly queueOf: (gid: Gid) => Queue;

  /** `queues`: one queue for every pass, or which queue takes a gid's passes (see passQueueOf). */
  constructor(
    queues: Queue | ((gid: Gid) => Queue),
    private readonly opts: {
      readonly retries?: PassJobRetries;
      readonly clock?: Clock;
      /**
       * How long an add may go unanswered before it counts as failed (default 10 s): a connection stuck on a dead
       * cluster node must not hold the sweep or a pass for ever. Told to `onStuck`, which may replace the queues.
       */
      readonly addTimeoutMs?: number;
      readonly onStuck?: (queue: Queue) => void;
    } = {},
  ) {
    this.queueOf = typeof queues === 'function' ? queues : () => queues;
  }

  /** Adds the pass; resolves once Redis holds it (or already held it). */
  async schedule(gid: Gid, at: number, key: string, trace?: string): Promise<void> {
    const data: PassJobData = trace !== undefined ? { gid, at, trace } : { gid, at };
    const queue = this.queueOf(gid);
    const adding = queue.add(PASS_JOB_NAME, data, {
      jobId: passJobId(gid, key),
      delay: Math.max(0, at - (this.opts.clock ?? systemClock).now()),
      // A pass that throws (Redis restarting, say) is tried again; a pass is safe to repeat.
      attempts: this.opts.retries?.attempts ?? 5,
      backoff: { type: 'exponential', delay: this.opts.retries?.backoffMs ?? 1000 },
      removeOnComplete: true,
      // Removed when it finally fails, so that the recovery sweep can ask for the same key again.
      removeOnFail: true,
    });
    const timeoutMs = this.opts.addTimeoutMs ?? 10_000;
    if (!(await settledWithin(adding, timeoutMs))) {
      adding.catch(() => undefined);
      this.opts.onStuck?.(queue);
      throw new Error(`pass queue ${queue.name} did not answer an add in ${timeoutMs} ms`);
    }
    await adding;
  }
}
