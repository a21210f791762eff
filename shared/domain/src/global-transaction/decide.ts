import type { BranchOutcome, TxCommand } from './commands';
import { TxRejected } from './errors';
import type { TxEvent } from './events';
import { findBranch, type ActiveTransaction, type BranchState, type GlobalTransaction } from './state';
import { FINAL_STATUSES, type Policy } from './types';

const iso = (t: number): string => new Date(t).toISOString();

/**
 * Base retry interval in seconds, as DTM computes it: the transaction's `retry_interval`; else its
 * `timeout_to_fail` when that is shorter than the server's interval; else the server's interval.
 */
export const baseIntervalS = (tx: ActiveTransaction, policy: Policy): number => {
  const { retryInterval, timeoutToFail } = tx.definition.options;
  if (retryInterval > 0) return retryInterval;
  if (timeoutToFail > 0 && timeoutToFail < policy.retryIntervalS) return timeoutToFail;
  return policy.retryIntervalS;
};

/**
 * Delay before the next call of a branch. ONGOING: the fixed base interval. Errors: the base
 * interval doubled per consecutive error (B, 2B, 4B, …), capped by `policy.backoffCapS`.
 */
export const retryDelayMs = (
  tx: ActiveTransaction,
  branch: BranchState,
  outcome: 'ongoing' | 'error',
  policy: Policy,
): number => {
  const base = baseIntervalS(tx, policy) * 1000;
  if (outcome === 'ongoing') return base;
  const cap = Math.max(base, policy.backoffCapS * 1000);
  return Math.min(cap, base * 2 ** Math.min(branch.errors, 40));
};

const describe = (o: BranchOutcome, op: string): string =>
  o.kind === 'failure' ? `FAILURE is retried here, ${op} must succeed: ${o.detail}` : 'detail' in o ? o.detail : '';

const recordResult = (tx: ActiveTransaction, cmd: Extract<TxCommand, { type: 'RecordBranchResult' }>): TxEvent[] => {
  const { branchId, op, url, outcome } = cmd.data;
  const { now, policy } = cmd.metadata;
  const branch = findBranch(tx, branchId, op);
  if (!branch) throw new TxRejected('not-found', `no branch ${branchId}/${op} in transaction ${tx.gid}`);
  // Late or repeated answers (a second driver, a call that outlived a force stop) change nothing.
  if (branch.status !== 'prepared' || FINAL_STATUSES.has(tx.status)) return [];
  const at = iso(now);
  if (outcome.kind === 'success') return [{ type: 'BranchSucceeded', data: { branchId, op, at } }];
  // FAILURE is final only for a forward saga action; compensations must end in success.
  if (outcome.kind === 'failure' && op === 'action') {
    const reason = `url:${url} return failed: ${outcome.detail} FAILURE`;
    return [{ type: 'BranchFailed', data: { branchId, op, reason, at } }];
  }
  const kind = outcome.kind === 'ongoing' ? 'ongoing' : 'error';
  const retryAt = iso(now + retryDelayMs(tx, branch, kind, policy));
  return [
    { type: 'BranchRetryScheduled', data: { branchId, op, outcome: kind, detail: describe(outcome, op), at, retryAt } },
  ];
};

const requireActive = (state: GlobalTransaction, gid: string): ActiveTransaction => {
  if (state.status === 'none') throw new TxRejected('not-found', `no transaction with gid '${gid}'`);
  return state;
};

/** Decides which events a command produces in the given state, or rejects it. Pure. */
export const decide = (cmd: TxCommand, state: GlobalTransaction): TxEvent[] => {
  switch (cmd.type) {
    case 'SubmitGlobalTransaction': {
      const at = iso(cmd.metadata.now);
      if (state.status === 'none') {
        return [
          { type: 'TransactionPrepared', data: { definition: cmd.data.definition, branches: cmd.data.branches, at } },
          { type: 'TransactionSubmitted', data: { at } },
        ];
      }
      if (state.definition.transType !== cmd.data.definition.transType) {
        throw new TxRejected(
          'conflict',
          `gid '${state.gid}' is a ${String(state.definition.transType)} transaction, not ${String(cmd.data.definition.transType)}`,
        );
      }
      // As DTM: a prepared transaction is submitted with its stored branches; a submitted one is just driven again.
      if (state.status === 'prepared') return [{ type: 'TransactionSubmitted', data: { at } }];
      if (state.status === 'submitted') return [];
      throw new TxRejected('conflict', `current status '${state.status}', cannot submit.`);
    }
    case 'RecordBranchResult':
      return recordResult(requireActive(state, ''), cmd);
    case 'ForceStop': {
      const tx = requireActive(state, cmd.data.gid);
      if (FINAL_STATUSES.has(tx.status))
        throw new TxRejected('conflict', `current status '${tx.status}', cannot forceStop.`);
      return [
        { type: 'TransactionFailed', data: { reason: 'force stopped', forced: true, at: iso(cmd.metadata.now) } },
      ];
    }
    case 'ResetNextCronTime': {
      const tx = requireActive(state, cmd.data.gid);
      if (FINAL_STATUSES.has(tx.status)) return [];
      return [{ type: 'RetryScheduleReset', data: { at: iso(cmd.metadata.now) } }];
    }
    default: {
      const unhandled: never = cmd;
      throw new Error(`unknown command ${JSON.stringify(unhandled)}`);
    }
  }
};
