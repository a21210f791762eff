import { planMsg } from './msg';
import type { Plan } from './plan-kit';
import { planSaga } from './saga';
import type { GlobalTransaction } from './state';
import { planTccXa } from './two-phase';
import type { Policy } from './types';
import { planWorkflow } from './workflow';

export type { BranchCall, Plan } from './plan-kit';

/**
 * The planner: given the state and the time, what is due now — events to append, branch calls to
 * make, or a time to wake up. Pure; one function per mode, all driven by the same machinery.
 */
export const plan = (state: GlobalTransaction, now: number, policy: Policy): Plan => {
  if (state.status === 'none' || state.status === 'succeed' || state.status === 'failed') return { kind: 'done' };
  // The last pass threw: nothing until its backoff has passed (DESIGN invariant 9).
  if (state.passFailures.retryAt > now) return { kind: 'wait', until: state.passFailures.retryAt };
  switch (state.definition.transType) {
    case 'saga':
      return planSaga(state, now);
    case 'tcc':
    case 'xa':
      return planTccXa(state, now, policy);
    case 'msg':
      return planMsg(state, now, policy);
    case 'workflow':
      return planWorkflow(state, now, policy);
  }
};
