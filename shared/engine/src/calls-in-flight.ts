import type { BranchCall, BranchOutcome } from '@dtm-ts/domain';

/** A finished branch call: what was called, its answer, and how long it took (ms). */
export interface CallResult {
  readonly call: BranchCall;
  readonly outcome: BranchOutcome;
  readonly ms: number;
}

const keyOf = (call: BranchCall): string => `${call.branchId}/${call.op}`;

/** The branch calls a pass has started and not yet recorded, at most one per (branch, op). */
export class CallsInFlight {
  private readonly running = new Map<string, Promise<CallResult>>();

  get size(): number {
    return this.running.size;
  }

  has(call: BranchCall): boolean {
    return this.running.has(keyOf(call));
  }

  /** Starts `call` through `run` unless the same call is already running. */
  start(call: BranchCall, run: (call: BranchCall) => Promise<BranchOutcome>): void {
    if (this.has(call)) return;
    const t0 = performance.now();
    this.running.set(
      keyOf(call),
      run(call).then((outcome) => ({ call, outcome, ms: performance.now() - t0 })),
    );
  }

  /** Waits for whichever call ends first and forgets it. Only when `size > 0`. */
  async next(): Promise<CallResult> {
    const done = await Promise.race(this.running.values());
    this.running.delete(keyOf(done.call));
    return done;
  }
}
