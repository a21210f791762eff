import { planSequential, appendOne, type Plan } from './plan-kit';
import { iso } from '../time';
import type { ActiveTransaction } from './state';
import type { Policy } from './types';

/** Timeout of a transaction that does not time out only when asked (tcc, xa, msg): its own, else the server's. */
export const defaultDeadline = (tx: ActiveTransaction, policy: Policy): { at: number; seconds: number } => {
  const seconds = tx.definition.options.timeoutToFail || policy.timeoutToFailS;
  return { at: tx.createTime + seconds * 1000, seconds };
};

/**
 * TCC and XA (DTM's `trans_type_tcc.go`, `trans_type_xa.go`). Prepared: branches are registered by
 * the AP; past the timeout the TM aborts. Submitted: confirm (tcc, reverse registration order) or
 * commit (xa, forward order), one at a time. Aborting: cancel / rollback in the same orders.
 * Every second-phase call is retried until it succeeds.
 */
export const planTccXa = (tx: ActiveTransaction, now: number, policy: Policy): Plan => {
  const tcc = tx.definition.transType === 'tcc';
  const inOrder = <T>(rows: T[]): T[] => (tcc ? [...rows].reverse() : rows);
  switch (tx.status) {
    case 'prepared': {
      const deadline = defaultDeadline(tx, policy);
      if (now < deadline.at) return { kind: 'wait', until: deadline.at };
      return appendOne({
        type: 'TransactionAborting',
        data: { reason: `Timeout after ${deadline.seconds} seconds`, at: iso(now) },
      });
    }
    case 'submitted': {
      const op = tcc ? 'confirm' : 'commit';
      const rows = inOrder(tx.branches.filter((b) => b.op === op));
      return planSequential(rows, now, { type: 'TransactionSucceeded', data: { at: iso(now) } });
    }
    case 'aborting': {
      const op = tcc ? 'cancel' : 'rollback';
      const rows = inOrder(tx.branches.filter((b) => b.op === op));
      return planSequential(rows, now, {
        type: 'TransactionFailed',
        data: { reason: tx.rollbackReason, forced: false, at: iso(now) },
      });
    }
    default:
      return { kind: 'done' };
  }
};
