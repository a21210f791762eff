import { planParallel, planSequential, type Plan } from './plan-kit';
import { iso } from '../time';
import type { ActiveTransaction } from './state';
import { defaultDeadline } from './two-phase';
import { CHECK_BACK_BRANCH_ID, type Policy } from './types';

/**
 * Two-phase messages (DTM's `trans_type_msg.go`). Prepared: once past its timeout, the TM asks the
 * AP's `query_prepared` whether the local transaction committed (the check-back); its answer is
 * recorded as submitted or failed. Submitted: after `custom_data.delay`, every `action` is
 * delivered, in order or all at once when `concurrent`; a submitted message never rolls back, so
 * delivery is retried until every consumer accepted it.
 */
export const planMsg = (tx: ActiveTransaction, now: number, policy: Policy): Plan => {
  switch (tx.status) {
    case 'prepared': {
      const due = Math.max(defaultDeadline(tx, policy).at, tx.checkBack.notBefore);
      if (now < due) return { kind: 'wait', until: due };
      return {
        kind: 'call',
        calls: [{ branchId: CHECK_BACK_BRANCH_ID, op: 'msg', url: tx.definition.queryPrepared, data: '' }],
      };
    }
    case 'submitted': {
      const deliverAt = tx.createTime + tx.definition.delayS * 1000;
      if (tx.definition.delayS > 0 && now < deliverAt) return { kind: 'wait', until: deliverAt };
      const rows = tx.branches.filter((b) => b.op === 'action');
      const done = { type: 'TransactionSucceeded' as const, data: { at: iso(now) } };
      return tx.definition.ordering.concurrent ? planParallel(rows, now, done) : planSequential(rows, now, done);
    }
    default:
      return { kind: 'done' };
  }
};
