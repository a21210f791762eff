import type { NextFunction, Request, Response } from 'express';

/**
 * Faults a bank injects into the branch calls it receives, each a probability from 0 to 1. Used by the example's
 * test to show that the barrier keeps the books exact whatever the network and the TM's retries do.
 */
export interface ChaosOptions {
  /** Answer 409 before doing anything (a saga action or TCC try: the transfer rolls back; elsewhere: retried). */
  readonly refuse: number;
  /** Answer 425 (ONGOING) before doing anything: the TM retries at its fixed interval, an AP aborts a TCC/XA. */
  readonly ongoing?: number;
  /** Answer 500 before doing anything (the TM retries). */
  readonly failBefore: number;
  /** Do the work, commit, then answer 500 as if the reply were lost (the TM retries: a duplicate). */
  readonly failAfter: number;
  /** Wait before doing anything, a random time in `delayMs`. */
  readonly delay: number;
  readonly delayMs: readonly [number, number];
  /** Msg sender: die after the local commit, before submit (the TM's check-back must find the commit). */
  readonly crashAfterCommit: number;
  /** Msg sender: die inside the local transaction (it rolls back; the check-back must fail the message). */
  readonly crashBeforeCommit: number;
}

/** No faults at all. */
export const NO_CHAOS: ChaosOptions = {
  refuse: 0,
  failBefore: 0,
  failAfter: 0,
  delay: 0,
  delayMs: [0, 0],
  crashAfterCommit: 0,
  crashBeforeCommit: 0,
};

/** How many faults of each kind were injected. */
export type ChaosCounts = Record<
  'refuse' | 'ongoing' | 'failBefore' | 'failAfter' | 'delay' | 'crashAfterCommit' | 'crashBeforeCommit',
  number
>;

/** A small seeded PRNG (mulberry32), so a failing run can be replayed with its seed. */
export const seededRandom = (seed: number): (() => number) => {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

/** An injected fault; answered 500 by the branch handlers. */
export class InjectedFault extends Error {
  override readonly name = 'InjectedFault';
}

/** Decides, per call, which fault (if any) to inject, and counts them. */
export class Chaos {
  readonly counts: ChaosCounts = {
    refuse: 0,
    ongoing: 0,
    failBefore: 0,
    failAfter: 0,
    delay: 0,
    crashAfterCommit: 0,
    crashBeforeCommit: 0,
  };

  constructor(
    private options: ChaosOptions = NO_CHAOS,
    private readonly random: () => number = Math.random,
  ) {}

  /** Changes the faults from now on (turn them off to let the last transfers finish quickly). */
  set(options: ChaosOptions): void {
    this.options = options;
  }

  /** True with probability `options[kind]`, counting the hits. */
  roll(kind: keyof ChaosCounts): boolean {
    const hit = this.random() < (this.options[kind] ?? 0);
    if (hit) this.counts[kind]++;
    return hit;
  }

  /**
   * Express middleware for branch routes: maybe waits, maybe answers 409 (unless `refuse` is false), 425 or 500
   * before the handler runs.
   */
  middleware(opts: { refuse: boolean } = { refuse: true }) {
    return (_req: Request, res: Response, next: NextFunction): void => {
      const go = (): void => {
        if (opts.refuse && this.roll('refuse')) {
          res.status(409).json({ dtm_result: 'FAILURE', message: 'injected refusal' });
        } else if (this.roll('ongoing')) {
          res.status(425).json({ dtm_result: 'ONGOING', message: 'injected ongoing' });
        } else if (this.roll('failBefore')) {
          res.status(500).json({ message: 'injected error before the work' });
        } else next();
      };
      if (this.roll('delay')) {
        const [lo, hi] = this.options.delayMs;
        setTimeout(go, lo + Math.floor(this.random() * (hi - lo)));
      } else go();
    };
  }

  /** Called by a handler after its local transaction committed: maybe loses the reply. */
  afterCommit(): void {
    if (this.roll('failAfter')) throw new InjectedFault('injected error after the work committed');
  }
}
