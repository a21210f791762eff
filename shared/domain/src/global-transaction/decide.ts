import type { BranchOutcome, DefinitionWithBranches, TxCommand } from './commands';
import { TxRejected } from './errors';
import type { TxEvent } from './events';
import { findBranch, type ActiveTransaction, type GlobalTransaction } from './state';
import { FINAL_STATUSES, type BranchDef, type Gid, type Policy, type Protocol } from './types';
import { recordWorkflowCallback, submitWorkflow } from './workflow';
import { isJsonObject, storedPayload } from '../branch/protocol';

import { iso } from '../time';

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
  previousErrors: number,
  outcome: 'ongoing' | 'error',
  policy: Policy,
): number => {
  const base = baseIntervalS(tx, policy) * 1000;
  if (outcome === 'ongoing') return base;
  const cap = Math.max(base, policy.backoffCapS * 1000);
  return Math.min(cap, base * 2 ** Math.min(previousErrors, 40));
};

/** A registered row as stored: its data in the transaction's payload encoding, without the `binary` flag. */
const storedBranch = ({ binary, ...b }: BranchDef, protocol: Protocol): BranchDef => {
  // Rows normally arrive in the transaction's encoding (the API converts them); `binary` says how to convert.
  const stored = binary === undefined ? b : { ...b, data: storedPayload(b.data, binary, protocol) };
  // A json-rpc branch sends its data as the call's params: refuse what could never be sent, not retry it forever.
  if (protocol === 'json-rpc' && stored.data !== '' && !isJsonObject(stored.data)) {
    throw new TxRejected(
      'invalid',
      `data of branch ${b.branchId} must be a JSON object: it is the params of a json-rpc call`,
    );
  }
  return stored;
};

const describe = (o: BranchOutcome, op: string): string =>
  o.kind === 'failure' ? `FAILURE is retried here, ${op} must succeed: ${o.detail}` : 'detail' in o ? o.detail : '';

/**
 * The msg check-back's answer: SUCCESS commits the message, FAILURE ends it failed with no
 * delivery; ONGOING asks again after the fixed interval, an error after a backoff. An answer that
 * arrives after the message left `prepared` (a submit won the race) changes nothing.
 */
const recordCheckBack = (tx: ActiveTransaction, cmd: Extract<TxCommand, { type: 'RecordBranchResult' }>): TxEvent[] => {
  const { url, outcome } = cmd.data;
  const { now, policy } = cmd.metadata;
  if (tx.status !== 'prepared' || tx.definition.transType !== 'msg') return [];
  const at = iso(now);
  if (outcome.kind === 'success') return [{ type: 'TransactionSubmitted', data: { at } }];
  if (outcome.kind === 'failure') {
    const reason = `url:${url} return failed: ${outcome.detail} FAILURE`;
    return [{ type: 'TransactionFailed', data: { reason, forced: false, at } }];
  }
  const retryAt = iso(now + retryDelayMs(tx, tx.checkBack.errors, outcome.kind, policy));
  return [{ type: 'CheckBackRetryScheduled', data: { outcome: outcome.kind, detail: outcome.detail, at, retryAt } }];
};

const recordResult = (tx: ActiveTransaction, cmd: Extract<TxCommand, { type: 'RecordBranchResult' }>): TxEvent[] => {
  const { branchId, op, url, outcome } = cmd.data;
  const { now, policy } = cmd.metadata;
  // A workflow's only call is its resume callback, whatever the workflow is named (even `msg`).
  if (tx.definition.transType === 'workflow') return recordWorkflowCallback(tx, cmd);
  if (op === 'msg') return recordCheckBack(tx, cmd);
  const branch = findBranch(tx, branchId, op);
  if (!branch) throw new TxRejected('not-found', `no branch ${branchId}/${op} in transaction ${tx.gid}`);
  // Late or repeated answers (a second driver, a call that outlived a force stop) change nothing.
  if (branch.status !== 'prepared' || FINAL_STATUSES.has(tx.status)) return [];
  const at = iso(now);
  if (outcome.kind === 'success') return [{ type: 'BranchSucceeded', data: { branchId, op, at } }];
  // FAILURE is final only for a forward saga action; second-phase calls and msg delivery must end in success.
  if (outcome.kind === 'failure' && op === 'action' && tx.definition.transType === 'saga') {
    const reason = `url:${url} return failed: ${outcome.detail} FAILURE`;
    return [{ type: 'BranchFailed', data: { branchId, op, reason, at } }];
  }
  const kind = outcome.kind === 'ongoing' ? 'ongoing' : 'error';
  const retryAt = iso(now + retryDelayMs(tx, branch.errors, kind, policy));
  return [
    { type: 'BranchRetryScheduled', data: { branchId, op, outcome: kind, detail: describe(outcome, op), at, retryAt } },
  ];
};

const requireActive = (state: GlobalTransaction, gid: Gid): ActiveTransaction => {
  if (state.status === 'none') throw new TxRejected('not-found', `no transaction with gid '${gid}'`);
  return state;
};

const prepared = (d: DefinitionWithBranches, at: string, trace?: string): TxEvent => ({
  type: 'TransactionPrepared',
  data: { definition: d.definition, branches: d.branches, at, ...(trace ? { trace } : {}) },
});

const sameMode = (tx: ActiveTransaction, transType: string): void => {
  if (tx.definition.transType !== transType) {
    throw new TxRejected('conflict', `gid '${tx.gid}' is a ${tx.definition.transType} transaction, not ${transType}`);
  }
};

/** Decides which events a command produces in the given state, or rejects it. Pure. */
export const decide = (cmd: TxCommand, state: GlobalTransaction): TxEvent[] => {
  switch (cmd.type) {
    case 'PrepareGlobalTransaction': {
      const at = iso(cmd.metadata.now);
      if (state.status === 'none') {
        return [prepared(cmd.data, at, cmd.metadata.trace)];
      }
      sameMode(state, cmd.data.definition.transType);
      // As DTM: preparing again while prepared is a no-op; a workflow is returned as it is, whatever its status.
      if (state.status === 'prepared' || state.definition.transType === 'workflow') return [];
      throw new TxRejected('conflict', `current status '${state.status}', cannot prepare.`);
    }
    case 'AbortGlobalTransaction': {
      const tx = requireActive(state, cmd.data.gid);
      const at = iso(cmd.metadata.now);
      const reason = cmd.data.reason;
      // A prepared message is simply dropped: its local transaction did not commit.
      if (tx.definition.transType === 'msg' && tx.status === 'prepared') {
        return [{ type: 'TransactionFailed', data: { reason, forced: false, at } }];
      }
      const t = cmd.data.transType;
      if (
        (t !== 'tcc' && t !== 'xa') ||
        t !== tx.definition.transType ||
        (tx.status !== 'prepared' && tx.status !== 'aborting')
      ) {
        throw new TxRejected('conflict', `trans type: '${t}' current status '${tx.status}', cannot abort.`);
      }
      if (tx.status === 'aborting') return [];
      return [{ type: 'TransactionAborting', data: { reason, at } }];
    }
    case 'RegisterBranch': {
      if (state.status === 'none' || state.status !== 'prepared') {
        throw new TxRejected('conflict', `no trans with gid: ${cmd.data.gid} status: prepared found`);
      }
      if (cmd.data.transType !== state.definition.transType) {
        throw new TxRejected(
          'invalid',
          `gid '${state.gid}' is a ${state.definition.transType} transaction, not ${cmd.data.transType}`,
        );
      }
      const fresh = [];
      for (const received of cmd.data.branches) {
        const b = storedBranch(received, state.definition.protocol);
        const existing = findBranch(state, b.branchId, b.op);
        if (!existing) fresh.push(b);
        // The same registration again (a client retrying after a lost answer) is fine; other values are not.
        else if (
          existing.url !== b.url ||
          existing.data !== b.data ||
          (b.status !== undefined && existing.status !== b.status)
        ) {
          throw new TxRejected('invalid', `branch ${b.branchId}/${b.op} is already registered with other values`);
        }
      }
      if (fresh.length === 0) return [];
      const { maxBranches } = cmd.data;
      if (maxBranches !== undefined) {
        const ids = new Set([...state.branches, ...fresh].map((b) => b.branchId));
        if (ids.size > maxBranches) {
          throw new TxRejected('invalid', `too many branches: ${ids.size} > ${maxBranches} (MAX_BRANCHES)`);
        }
      }
      return [{ type: 'BranchesRegistered', data: { branches: fresh, at: iso(cmd.metadata.now) } }];
    }
    case 'SubmitGlobalTransaction': {
      const at = iso(cmd.metadata.now);
      if (cmd.data.definition.transType === 'workflow') {
        // A workflow is created by prepareWorkflow; its submit only records the client's final status.
        const tx = requireActive(state, cmd.data.definition.gid);
        sameMode(tx, 'workflow');
        return submitWorkflow(tx, cmd.data.definition.reqExtra ?? {}, cmd.metadata.now);
      }
      if (state.status === 'none') {
        return [prepared(cmd.data, at, cmd.metadata.trace), { type: 'TransactionSubmitted', data: { at } }];
      }
      sameMode(state, cmd.data.definition.transType);
      // As DTM: a prepared transaction is submitted with its stored branches; a submitted one is just driven again.
      if (state.status === 'prepared') return [{ type: 'TransactionSubmitted', data: { at } }];
      if (state.status === 'submitted') return [];
      throw new TxRejected('conflict', `current status '${state.status}', cannot submit.`);
    }
    case 'RecordBranchResult':
      return recordResult(requireActive(state, cmd.data.gid), cmd);
    case 'RecordPassFailure': {
      const tx = requireActive(state, cmd.data.gid);
      if (FINAL_STATUSES.has(tx.status)) return [];
      const { now, policy } = cmd.metadata;
      const retryAt = iso(now + retryDelayMs(tx, tx.passFailures.count, 'error', policy));
      return [{ type: 'PassFailed', data: { error: cmd.data.error, at: iso(now), retryAt } }];
    }
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
