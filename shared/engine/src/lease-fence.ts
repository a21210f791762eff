import type { Clock, PassLease } from '@dtm-ts/ports';

/** Whether a driver still holds a transaction's lease: asked before each branch call and after each conflict. */
export interface Fence {
  /** True when there is a lease to keep (false for NO_FENCE). */
  readonly leased: boolean;
  /** Set once an append dropped the lease with the transaction's end (see Projection.endLease): nothing to release. */
  endedWithAppend: boolean;
  /** True while the lease is surely ours: known locally when it was confirmed recently enough, else renewed. */
  holds(): Promise<boolean>;
  /** Asks the lease store itself (renews): after a conflict, someone else may have taken over. */
  confirm(): Promise<boolean>;
  /** Stops renewing. */
  stop(): void;
}

/** A driver without a lease: nothing to lose (two drivers are still correct, just wasteful). */
export const NO_FENCE: Fence = {
  leased: false,
  endedWithAppend: false,
  holds: () => Promise.resolve(true),
  confirm: () => Promise.resolve(true),
  stop() {},
};

/**
 * A held lease, renewed every third of its TTL. It counts as surely held until a third of the TTL before the last
 * confirmed renewal would lapse, measured on a clock that never jumps: a process paused past its lease (SIGSTOP, a
 * long GC) finds, on waking, that it must ask again before its next call, and stops if someone took over.
 */
export class LeaseFence implements Fence {
  readonly leased = true;
  endedWithAppend = false;
  private confirmedUntil: number;
  private lost = false;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(
    private readonly lease: PassLease,
    private readonly gid: string,
    private readonly token: string,
    private readonly ttlMs: number,
    private readonly monotonic: Clock,
    /** When the acquire was sent: the lease runs from no earlier than that. */
    acquiredAt: number,
  ) {
    this.confirmedUntil = acquiredAt + ttlMs;
    this.timer = setInterval(() => void this.renew(), ttlMs / 3);
  }

  async holds(): Promise<boolean> {
    if (this.lost) return false;
    if (this.monotonic.now() < this.confirmedUntil - this.ttlMs / 3) return true;
    return this.renew();
  }

  confirm(): Promise<boolean> {
    return this.lost ? Promise.resolve(false) : this.renew();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async renew(): Promise<boolean> {
    const sent = this.monotonic.now();
    try {
      if (!(await this.lease.renew(this.gid, this.token, this.ttlMs))) this.lost = true;
      else this.confirmedUntil = Math.max(this.confirmedUntil, sent + this.ttlMs);
    } catch {
      // Unknown (Redis unreachable): held only as long as the last confirmation says.
    }
    return !this.lost && this.monotonic.now() < this.confirmedUntil - this.ttlMs / 3;
  }
}
