import type { TxEvent } from './events';
import { epochMs } from '../time';
import {
  branchKey,
  sagaBranchId,
  type BranchDef,
  type BranchStatus,
  type GlobalStatus,
  type Gid,
  type TransDefinition,
} from './types';

/** A branch row as the fold sees it. Times are epoch milliseconds. */
export interface BranchState extends BranchDef {
  readonly status: BranchStatus;
  /** Calls whose answer was recorded (any outcome). */
  readonly attempts: number;
  /** Consecutive transient errors since the last non-error answer; drives the backoff. */
  readonly errors: number;
  /** Not to be called before this time (0: due now). */
  readonly notBefore: number;
  readonly lastOutcome: 'success' | 'failure' | 'ongoing' | 'error' | null;
  readonly lastDetail: string;
  readonly createTime: number;
  readonly updateTime: number;
  readonly finishTime: number | null;
}

export interface ActiveTransaction {
  readonly status: GlobalStatus;
  readonly gid: Gid;
  readonly definition: TransDefinition;
  /** Rows in creation order: per saga step, compensate then action (as DTM lists them). */
  readonly branches: readonly BranchState[];
  readonly createTime: number;
  readonly updateTime: number;
  readonly finishTime: number | null;
  readonly rollbackTime: number | null;
  readonly rollbackReason: string;
  /** Non-success answers of forward steps, counted against `retry_limit` (persisted, unlike DTM's SQL store). */
  readonly retryCount: number;
  /** Saga step indexes whose compensation is owed, fixed when the abort is recorded. */
  readonly toCompensate: ReadonlySet<number>;
  readonly forced: boolean;
  /** Msg check-back retries: consecutive errors and when to ask again (0: when the timeout passes). */
  readonly checkBack: { readonly attempts: number; readonly errors: number; readonly notBefore: number };
  /**
   * Passes that threw since the transaction last moved (DESIGN invariant 9): how many in a row (drives the
   * backoff), the last error, and no pass before `retryAt` (0: none pending).
   */
  readonly passFailures: { readonly count: number; readonly error: string; readonly retryAt: number };
  /** traceparent of the request that created it. */
  readonly trace?: string;
  /** Workflow: the result (base64) its client submitted with the final status. */
  readonly result?: string;
}

export type GlobalTransaction = { readonly status: 'none' } | ActiveTransaction;

export const initialState: GlobalTransaction = { status: 'none' };

const NO_PASS_FAILURES: ActiveTransaction['passFailures'] = { count: 0, error: '', retryAt: 0 };

const ms = epochMs;

/** Events that show a transaction moving: after one, earlier pass failures no longer count. */
const MOVES: ReadonlySet<TxEvent['type']> = new Set<TxEvent['type']>([
  'TransactionSubmitted',
  'BranchSucceeded',
  'BranchFailed',
  'TransactionAborting',
  'TransactionSucceeded',
  'TransactionFailed',
]);

/** Index of a saga step from its branch id (`01` → 0). */
export const stepIndex = (branchId: string): number => Number.parseInt(branchId, 10) - 1;

/** Steps step i must wait for before its action may run. */
export const stepDependencies = (tx: ActiveTransaction, i: number): readonly number[] => {
  const { concurrent, orders } = tx.definition.ordering;
  if (!concurrent) return i === 0 ? [] : [i - 1];
  return orders[i] ?? [];
};

export const findBranch = (tx: ActiveTransaction, branchId: string, op: string): BranchState | undefined =>
  tx.branches.find((b) => b.branchId === branchId && b.op === op);

const actionOf = (tx: ActiveTransaction, i: number): BranchState | undefined =>
  findBranch(tx, sagaBranchId(i), 'action');

/** True when every dependency of step i succeeded: its action may have been started. */
export const stepMayRun = (tx: ActiveTransaction, i: number): boolean =>
  stepDependencies(tx, i).every((j) => actionOf(tx, j)?.status === 'succeed');

/** Number of saga steps. */
export const stepCount = (tx: ActiveTransaction): number => tx.definition.steps.length;

/**
 * The steps whose compensation is owed once the saga aborts: every step whose action was called,
 * plus every step that could have been started (its dependencies had succeeded), since a call
 * may have been in flight when a process died. The barrier makes a needless compensation a no-op.
 */
const owedCompensations = (tx: ActiveTransaction): Set<number> => {
  const owed = new Set<number>();
  if (tx.definition.transType !== 'saga') return owed;
  for (let i = 0; i < stepCount(tx); i++) {
    const action = actionOf(tx, i);
    if (!action) continue;
    if (action.status !== 'prepared' || action.attempts > 0 || stepMayRun(tx, i)) owed.add(i);
  }
  return owed;
};

const updateBranch = (
  tx: ActiveTransaction,
  branchId: string,
  op: string,
  change: (b: BranchState) => BranchState,
): readonly BranchState[] => {
  const key = branchKey(branchId, op);
  return tx.branches.map((b) => (branchKey(b.branchId, b.op) === key ? change(b) : b));
};

/**
 * Fields listed one by one, not `{ ...b, status, … }`: V8 (Node 20) makes a fresh hidden class for every object
 * built by a spread followed by new keys, which cost ~2 µs per key and most of the TM's garbage collection.
 */
const newBranch = (b: BranchDef, at: number): BranchState => ({
  branchId: b.branchId,
  op: b.op,
  url: b.url,
  data: b.data,
  // Workflow rows arrive with their outcome; every other row starts prepared.
  status: b.status ?? 'prepared',
  attempts: 0,
  errors: 0,
  notBefore: 0,
  lastOutcome: null,
  lastDetail: '',
  createTime: at,
  updateTime: at,
  finishTime: b.status === 'succeed' || b.status === 'failed' ? at : null,
});

/** Applies one event. Pure: returns a new state. Unknown or misplaced events leave the state as it is. */
export const evolve = (state: GlobalTransaction, event: TxEvent): GlobalTransaction => {
  if (event.type === 'TransactionPrepared') {
    if (state.status !== 'none') return state;
    const at = ms(event.data.at);
    const def = event.data.definition;
    return {
      status: 'prepared',
      gid: def.gid,
      definition: def,
      branches: event.data.branches.map((b) => newBranch(b, at)),
      createTime: at,
      updateTime: at,
      finishTime: null,
      rollbackTime: null,
      rollbackReason: '',
      retryCount: 0,
      toCompensate: new Set(),
      forced: false,
      checkBack: { attempts: 0, errors: 0, notBefore: 0 },
      passFailures: NO_PASS_FAILURES,
      ...(event.data.trace ? { trace: event.data.trace } : {}),
    };
  }
  if (state.status === 'none') return state;
  // A branch answer or a status change is progress: the failures that came before no longer count.
  const tx =
    state.passFailures.count > 0 && MOVES.has(event.type) ? { ...state, passFailures: NO_PASS_FAILURES } : state;
  switch (event.type) {
    case 'TransactionSubmitted':
      return { ...tx, status: 'submitted', updateTime: ms(event.data.at) };
    case 'BranchesRegistered': {
      const at = ms(event.data.at);
      const fresh = event.data.branches.filter((b) => !findBranch(tx, b.branchId, b.op));
      return {
        ...tx,
        updateTime: at,
        branches: [...tx.branches, ...fresh.map((b) => newBranch(b, at))],
      };
    }
    case 'CheckBackRetryScheduled': {
      const at = ms(event.data.at);
      const cb = tx.checkBack;
      return {
        ...tx,
        updateTime: at,
        checkBack: {
          attempts: cb.attempts + 1,
          errors: event.data.outcome === 'error' ? cb.errors + 1 : 0,
          notBefore: ms(event.data.retryAt),
        },
      };
    }
    case 'BranchSucceeded': {
      const at = ms(event.data.at);
      return {
        ...tx,
        updateTime: at,
        branches: updateBranch(tx, event.data.branchId, event.data.op, (b) => ({
          ...b,
          status: 'succeed',
          attempts: b.attempts + 1,
          errors: 0,
          notBefore: 0,
          lastOutcome: 'success',
          lastDetail: '',
          updateTime: at,
          finishTime: at,
        })),
      };
    }
    case 'BranchFailed': {
      const at = ms(event.data.at);
      return {
        ...tx,
        updateTime: at,
        branches: updateBranch(tx, event.data.branchId, event.data.op, (b) => ({
          ...b,
          status: 'failed',
          attempts: b.attempts + 1,
          errors: 0,
          notBefore: 0,
          lastOutcome: 'failure',
          lastDetail: event.data.reason,
          updateTime: at,
          finishTime: at,
        })),
      };
    }
    case 'BranchRetryScheduled': {
      const at = ms(event.data.at);
      const forward = event.data.op === 'action';
      return {
        ...tx,
        updateTime: at,
        retryCount: tx.retryCount + (forward ? 1 : 0),
        branches: updateBranch(tx, event.data.branchId, event.data.op, (b) => ({
          ...b,
          attempts: b.attempts + 1,
          errors: event.data.outcome === 'error' ? b.errors + 1 : 0,
          notBefore: ms(event.data.retryAt),
          lastOutcome: event.data.outcome,
          lastDetail: event.data.detail,
          updateTime: at,
        })),
      };
    }
    case 'TransactionAborting': {
      const at = ms(event.data.at);
      return {
        ...tx,
        status: 'aborting',
        updateTime: at,
        rollbackReason: event.data.reason,
        toCompensate: owedCompensations(tx),
        // Compensations start at once, whatever backoff the forward steps were in.
        branches: tx.branches.map((b) => (b.op === 'compensate' ? { ...b, notBefore: 0 } : b)),
      };
    }
    case 'TransactionSucceeded': {
      const at = ms(event.data.at);
      const result = event.data.result ? { result: event.data.result } : {};
      return { ...tx, status: 'succeed', updateTime: at, finishTime: at, ...result };
    }
    case 'TransactionFailed': {
      const at = ms(event.data.at);
      return {
        ...tx,
        status: 'failed',
        updateTime: at,
        rollbackTime: at,
        rollbackReason: tx.rollbackReason || event.data.reason,
        forced: event.data.forced,
        ...(event.data.result ? { result: event.data.result } : {}),
      };
    }
    case 'RetryScheduleReset': {
      const at = ms(event.data.at);
      return {
        ...tx,
        updateTime: at,
        branches: tx.branches.map((b) => ({ ...b, notBefore: 0 })),
        checkBack: { ...tx.checkBack, notBefore: Math.min(tx.checkBack.notBefore, at) },
        passFailures: { ...tx.passFailures, retryAt: Math.min(tx.passFailures.retryAt, at) },
      };
    }
    case 'PassFailed': {
      const at = ms(event.data.at);
      return {
        ...tx,
        updateTime: at,
        passFailures: { count: tx.passFailures.count + 1, error: event.data.error, retryAt: ms(event.data.retryAt) },
      };
    }
    default: {
      const unhandled: never = event;
      throw new Error(`unknown event ${JSON.stringify(unhandled)}`);
    }
  }
};

/** The state after a history of events. */
export const fold = (events: readonly TxEvent[], from: GlobalTransaction = initialState): GlobalTransaction =>
  events.reduce(evolve, from);
