import type { TxEvent } from './events';
import type { BranchState } from './state';
import type { CallOp } from './types';

/** A branch call the planner wants made now. */
export interface BranchCall {
  readonly branchId: string;
  readonly op: CallOp;
  readonly url: string;
  readonly data: string;
}

/** What a driver should do next with a transaction. */
export type Plan =
  | { readonly kind: 'append'; readonly events: TxEvent[] }
  | { readonly kind: 'call'; readonly calls: BranchCall[] }
  | { readonly kind: 'wait'; readonly until: number }
  | { readonly kind: 'done' };

export const toCall = (b: BranchState): BranchCall => ({ branchId: b.branchId, op: b.op, url: b.url, data: b.data });

/** Earliest of the given times, ignoring nulls; `fallback` when none. */
export const earliest = (times: (number | null)[], fallback: number): number => {
  const real = times.filter((t): t is number => t !== null);
  return real.length ? Math.min(...real) : fallback;
};

export const appendOne = (event: TxEvent): Plan => ({ kind: 'append', events: [event] });

/**
 * Runs `rows` one after another: the first one not yet succeeded is called when due (or waited
 * for); when every row succeeded, `whenDone` is appended. DTM's tcc, xa and sequential msg passes.
 */
export const planSequential = (rows: readonly BranchState[], now: number, whenDone: TxEvent): Plan => {
  const next = rows.find((b) => b.status !== 'succeed');
  if (!next) return appendOne(whenDone);
  return next.notBefore <= now ? { kind: 'call', calls: [toCall(next)] } : { kind: 'wait', until: next.notBefore };
};

/** Runs every row at once; when all succeeded, `whenDone` is appended. Concurrent msg delivery. */
export const planParallel = (rows: readonly BranchState[], now: number, whenDone: TxEvent): Plan => {
  const pending = rows.filter((b) => b.status !== 'succeed');
  if (pending.length === 0) return appendOne(whenDone);
  const due = pending.filter((b) => b.notBefore <= now);
  if (due.length) return { kind: 'call', calls: due.map(toCall) };
  return {
    kind: 'wait',
    until: earliest(
      pending.map((b) => b.notBefore),
      now,
    ),
  };
};
