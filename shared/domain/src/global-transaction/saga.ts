import { stepCount, stepDependencies, stepIndex, stepMayRun, type ActiveTransaction, type BranchState } from './state';
import { earliest, toCall, type Plan } from './plan-kit';
import { iso } from '../time';
import { sagaBranchId } from './types';

/** When a saga gives up, if it was asked to (saga never times out by default, as in DTM). */
export const sagaDeadline = (tx: ActiveTransaction): number | null =>
  tx.definition.options.timeoutToFail > 0 ? tx.createTime + tx.definition.options.timeoutToFail * 1000 : null;

const row = (tx: ActiveTransaction, i: number, op: 'action' | 'compensate'): BranchState | undefined => {
  const id = sagaBranchId(i);
  return tx.branches.find((b) => b.branchId === id && b.op === op);
};

const planForward = (tx: ActiveTransaction, now: number): Plan => {
  const deadline = sagaDeadline(tx);
  if (deadline !== null && now >= deadline) {
    return {
      kind: 'append',
      events: [
        {
          type: 'TransactionAborting',
          data: { reason: `Timeout after ${tx.definition.options.timeoutToFail} seconds`, at: iso(now) },
        },
      ],
    };
  }
  const actions = tx.branches.filter((b) => b.op === 'action');
  const failed = actions.find((b) => b.status === 'failed');
  if (failed) {
    return {
      kind: 'append',
      events: [{ type: 'TransactionAborting', data: { reason: failed.lastDetail, at: iso(now) } }],
    };
  }
  const limit = tx.definition.options.retryLimit;
  if (limit > 0 && tx.retryCount > limit) {
    return {
      kind: 'append',
      events: [
        {
          type: 'TransactionAborting',
          data: { reason: `RetryCount is greater than RetryLimit, RetryLimit: ${limit}`, at: iso(now) },
        },
      ],
    };
  }
  if (actions.every((b) => b.status === 'succeed')) {
    return { kind: 'append', events: [{ type: 'TransactionSucceeded', data: { at: iso(now) } }] };
  }
  const ready = actions.filter((b) => b.status === 'prepared' && stepMayRun(tx, stepIndex(b.branchId)));
  const due = ready.filter((b) => b.notBefore <= now);
  if (due.length) return { kind: 'call', calls: due.map(toCall) };
  return { kind: 'wait', until: earliest([...ready.map((b) => b.notBefore), deadline], now) };
};

/**
 * Compensation order. Sequential: reverse, each step after every later owed step is compensated.
 * Concurrent: step j after every owed step i that listed j in `orders[i]`.
 */
const compensationBlockers = (tx: ActiveTransaction, j: number): number[] => {
  const blockers: number[] = [];
  for (const i of tx.toCompensate) {
    if (i === j) continue;
    if (tx.definition.ordering.concurrent ? stepDependencies(tx, i).includes(j) : i > j) blockers.push(i);
  }
  return blockers;
};

const planBackward = (tx: ActiveTransaction, now: number): Plan => {
  const owed = [...tx.toCompensate].map((i) => ({ i, b: row(tx, i, 'compensate') }));
  const pending = owed.filter(({ b }) => b !== undefined && b.status !== 'succeed');
  if (pending.length === 0) {
    return {
      kind: 'append',
      events: [{ type: 'TransactionFailed', data: { reason: tx.rollbackReason, forced: false, at: iso(now) } }],
    };
  }
  const ready = pending.filter(({ i }) =>
    compensationBlockers(tx, i).every((k) => row(tx, k, 'compensate')?.status === 'succeed'),
  );
  const due = ready.filter(({ b }) => b!.notBefore <= now);
  if (due.length) return { kind: 'call', calls: due.map(({ b }) => toCall(b!)) };
  return {
    kind: 'wait',
    until: earliest(
      ready.map(({ b }) => b!.notBefore),
      now,
    ),
  };
};

/** The saga planner (DTM's `trans_type_saga.go`, as one pure function). */
export const planSaga = (tx: ActiveTransaction, now: number): Plan => {
  switch (tx.status) {
    case 'submitted':
      return stepCount(tx) === 0
        ? { kind: 'append', events: [{ type: 'TransactionSucceeded', data: { at: iso(now) } }] }
        : planForward(tx, now);
    case 'aborting':
      return planBackward(tx, now);
    default:
      // Prepared (a saga is submitted in the same append that prepares it) or finished.
      return { kind: 'done' };
  }
};
