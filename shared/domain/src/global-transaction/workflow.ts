import type { TxCommand } from './commands';
import { TxRejected } from './errors';
import type { TxEvent } from './events';
import type { Plan } from './plan-kit';
import { iso } from '../time';
import type { ActiveTransaction } from './state';
import { CHECK_BACK_BRANCH_ID, type Policy } from './types';

/** Base interval of a workflow's resume callback: its `retry_interval`, else the server's (no timeout shortens it). */
export const workflowIntervalMs = (tx: ActiveTransaction, policy: Policy): number =>
  (tx.definition.options.retryInterval || policy.retryIntervalS) * 1000;

/** When the resume callback is next due: one interval after creation, then one interval after each attempt. */
export const workflowCallbackDue = (tx: ActiveTransaction, policy: Policy): number =>
  tx.checkBack.attempts > 0 ? tx.checkBack.notBefore : tx.createTime + workflowIntervalMs(tx, policy);

/**
 * Workflow (DTM's `trans_type_workflow.go`). The client runs the workflow and records each step
 * with `registerBranch`; the TM never calls those rows. While the workflow is unfinished, the TM
 * calls the client's `query_prepared` (branch `00`, op = workflow name, body = the workflow input)
 * about every retry interval, with no timeout, so a crashed client resumes from its recorded
 * progress. The client's `submit` sets the final status.
 */
export const planWorkflow = (tx: ActiveTransaction, now: number, policy: Policy): Plan => {
  if (tx.status !== 'prepared') return { kind: 'done' };
  const due = workflowCallbackDue(tx, policy);
  if (now < due) return { kind: 'wait', until: due };
  const wf = tx.definition.workflow;
  return {
    kind: 'call',
    calls: [
      { branchId: CHECK_BACK_BRANCH_ID, op: wf?.name ?? '', url: tx.definition.queryPrepared, data: wf?.input ?? '' },
    ],
  };
};

/**
 * The resume callback's answer changes nothing: whatever it was, the callback is due again one
 * interval later (recorded, so the schedule is data). An answer after the workflow finished is dropped.
 */
export const recordWorkflowCallback = (
  tx: ActiveTransaction,
  cmd: Extract<TxCommand, { type: 'RecordBranchResult' }>,
): TxEvent[] => {
  const { branchId, outcome } = cmd.data;
  const { now, policy } = cmd.metadata;
  if (branchId !== CHECK_BACK_BRANCH_ID) {
    throw new TxRejected('not-found', `workflow ${tx.gid} has no callable branch ${branchId}`);
  }
  if (tx.status !== 'prepared') return [];
  const failed = outcome.kind === 'error' || outcome.kind === 'failure';
  const detail = outcome.kind === 'success' ? 'SUCCESS' : `${outcome.kind.toUpperCase()}: ${outcome.detail}`;
  return [
    {
      type: 'CheckBackRetryScheduled',
      data: {
        outcome: failed ? 'error' : 'ongoing',
        detail: `workflow callback answered ${detail}`,
        at: iso(now),
        retryAt: iso(now + workflowIntervalMs(tx, policy)),
      },
    },
  ];
};

/**
 * A workflow's `submit`: `req_extra.status` (`succeed` or `failed`) becomes the final status at
 * once, from prepared only, with `rollback_reason` and `result`; no branch is called.
 */
export const submitWorkflow = (
  tx: ActiveTransaction,
  reqExtra: Readonly<Record<string, string>>,
  now: number,
): TxEvent[] => {
  if (tx.status !== 'prepared') throw new TxRejected('conflict', `current status '${tx.status}', cannot submit.`);
  const status = reqExtra.status ?? '';
  const result = reqExtra.result ? { result: reqExtra.result } : {};
  const at = iso(now);
  if (status === 'succeed') return [{ type: 'TransactionSucceeded', data: { at, ...result } }];
  if (status === 'failed') {
    const reason = reqExtra.rollback_reason ?? '';
    return [{ type: 'TransactionFailed', data: { reason, forced: false, at, ...result } }];
  }
  throw new TxRejected(
    'invalid',
    `req_extra.status must be 'succeed' or 'failed' to submit a workflow, not '${status}'`,
  );
};
