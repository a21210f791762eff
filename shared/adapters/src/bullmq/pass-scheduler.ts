import type { Queue } from 'bullmq';
import type { Gid } from '@dtm-ts/domain';
import type { PassScheduler } from '@dtm-ts/ports';

/** Payload of a `drive` job: which transaction to drive, and when the pass was asked for (epoch ms). */
export interface PassJobData {
  readonly gid: Gid;
  readonly at: number;
  /** W3C traceparent of whoever asked for the pass. */
  readonly trace?: string;
}

/** Name of the job that drives one pass over one transaction. */
export const PASS_JOB_NAME = 'drive';

/**
 * The BullMQ job id of a pass: `<gid>.<key>`, percent-encoded. BullMQ rejects ':' in custom ids
 * (it separates key segments), and '.' in the gid is escaped too so that no gid/key pair can
 * produce another pair's id (`a.b`+`c` vs `a`+`b.c`).
 */
export const passJobId = (gid: Gid, key: string): string =>
  `${encodeURIComponent(gid).replaceAll('.', '%2E')}.${key.replaceAll('%', '%25').replaceAll(':', '%3A')}`;

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
  constructor(private readonly queue: Queue) {}

  /** Adds the pass; resolves once Redis holds it (or already held it). */
  async schedule(gid: Gid, at: number, key: string, trace?: string): Promise<void> {
    const data: PassJobData = trace !== undefined ? { gid, at, trace } : { gid, at };
    await this.queue.add(PASS_JOB_NAME, data, {
      jobId: passJobId(gid, key),
      delay: Math.max(0, at - Date.now()),
      // A pass that throws (Redis restarting, say) is tried again; a pass is safe to repeat.
      attempts: 5,
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: true,
      // Removed when it finally fails, so that the recovery sweep can ask for the same key again.
      removeOnFail: true,
    });
  }
}
