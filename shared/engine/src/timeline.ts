import {
  CHECK_BACK_BRANCH_ID,
  evolve,
  findBranch,
  initialState,
  type BranchDef,
  type GlobalStatus,
  type GlobalTransaction,
  type Gid,
  type TxEvent,
} from '@dtm-ts/domain';

/** Second-phase operations that undo a branch: what an audit means by "compensations". */
const UNDO_OPS: ReadonlySet<string> = new Set(['compensate', 'cancel', 'rollback']);

/** One recorded event, told for people: when, what, which branch call and how it ended. */
export interface TimelineEntry {
  /** Revision of the event in the transaction's stream (0-based). */
  readonly revision: number;
  /** When it was recorded (ISO-8601, as in the event). */
  readonly at: string;
  readonly type: string;
  /** The transaction's status once this event was applied. */
  readonly status: GlobalStatus | 'none';
  /** True when this event changed the status. */
  readonly statusChanged: boolean;
  /** The branch call this event records the answer of (`00`/`msg`: the msg check-back). */
  readonly branchId?: string;
  readonly op?: string;
  readonly url?: string;
  /** How the call ended: `succeed` and `failed` are final answers, `ongoing` and `error` get a retry. */
  readonly outcome?: 'succeed' | 'failed' | 'ongoing' | 'error';
  /** Why: a failure or abort reason, or the answer that caused a retry. */
  readonly reason?: string;
  readonly retryAt?: string;
  /** Branch operations this event declared (prepare, registerBranch). */
  readonly branches?: readonly { branchId: string; op: string; url: string }[];
  /** The event in one line. */
  readonly text: string;
}

/** A transaction's history as its events tell it (DESIGN invariant 8: audit is replay). */
export interface Timeline {
  readonly gid: Gid;
  readonly transType: string | null;
  /** Status after the last event (`none`: nothing recorded). */
  readonly status: GlobalStatus | 'none';
  /** Revision of the last event (-1: none). */
  readonly version: number;
  readonly events: readonly TimelineEntry[];
  /** Every recorded answer to an undo call (compensate, cancel, rollback), in the order they were recorded. */
  readonly compensations: readonly {
    readonly branchId: string;
    readonly op: string;
    readonly at: string;
    readonly outcome: NonNullable<TimelineEntry['outcome']>;
    readonly url?: string;
  }[];
}

const declared = (branches: readonly BranchDef[]) =>
  branches.map((b) => ({ branchId: b.branchId, op: b.op, url: b.url }));

/** The URL called for (branchId, op), as the transaction knew it before this event. */
const urlOf = (tx: GlobalTransaction, branchId: string, op: string): string | undefined => {
  if (tx.status === 'none') return undefined;
  if (branchId === CHECK_BACK_BRANCH_ID && (op === 'msg' || tx.definition.transType === 'workflow')) {
    return tx.definition.queryPrepared || undefined;
  }
  return findBranch(tx, branchId, op)?.url;
};

/** The facts of one event, before the status is known. */
const describe = (
  e: TxEvent,
  before: GlobalTransaction,
): Omit<TimelineEntry, 'revision' | 'status' | 'statusChanged'> => {
  const call = (branchId: string, op: string) => ({ branchId, op, url: urlOf(before, branchId, op) });
  const where = (branchId: string, op: string): string => {
    const url = urlOf(before, branchId, op);
    return `${branchId}/${op}${url ? ` ${url}` : ''}`;
  };
  switch (e.type) {
    case 'TransactionPrepared': {
      const d = e.data.definition;
      const branches = declared(e.data.branches);
      return {
        at: e.data.at,
        type: e.type,
        branches,
        text: `${d.transType} created with ${branches.length} branch operation(s): ${branches.map((b) => `${b.branchId}/${b.op}`).join(', ') || 'none'}`,
      };
    }
    case 'TransactionSubmitted':
      return { at: e.data.at, type: e.type, text: 'submitted' };
    case 'BranchesRegistered': {
      const branches = declared(e.data.branches);
      return {
        at: e.data.at,
        type: e.type,
        branches,
        text: `registered ${branches.map((b) => `${b.branchId}/${b.op} ${b.url}`).join(', ')}`,
      };
    }
    case 'CheckBackRetryScheduled': {
      // The msg check-back (op `msg`) or a workflow's resume callback (op = the workflow's name).
      const wf = before.status !== 'none' ? before.definition.workflow : undefined;
      const op = wf ? wf.name : 'msg';
      return {
        at: e.data.at,
        type: e.type,
        ...call(CHECK_BACK_BRANCH_ID, op),
        outcome: e.data.outcome,
        reason: e.data.detail,
        retryAt: e.data.retryAt,
        text: `${wf ? 'workflow callback' : 'check-back'} ${where(CHECK_BACK_BRANCH_ID, op)} answered ${e.data.outcome}: ${e.data.detail}; asks again at ${e.data.retryAt}`,
      };
    }
    case 'BranchSucceeded':
      return {
        at: e.data.at,
        type: e.type,
        ...call(e.data.branchId, e.data.op),
        outcome: 'succeed',
        text: `${where(e.data.branchId, e.data.op)} succeeded`,
      };
    case 'BranchFailed':
      return {
        at: e.data.at,
        type: e.type,
        ...call(e.data.branchId, e.data.op),
        outcome: 'failed',
        reason: e.data.reason,
        text: `${where(e.data.branchId, e.data.op)} failed: ${e.data.reason}`,
      };
    case 'BranchRetryScheduled':
      return {
        at: e.data.at,
        type: e.type,
        ...call(e.data.branchId, e.data.op),
        outcome: e.data.outcome,
        reason: e.data.detail,
        retryAt: e.data.retryAt,
        text: `${where(e.data.branchId, e.data.op)} answered ${e.data.outcome}: ${e.data.detail}; retry at ${e.data.retryAt}`,
      };
    case 'TransactionAborting':
      return { at: e.data.at, type: e.type, reason: e.data.reason, text: `aborting: ${e.data.reason}` };
    case 'TransactionSucceeded':
      return { at: e.data.at, type: e.type, text: 'succeeded' };
    case 'TransactionFailed':
      return {
        at: e.data.at,
        type: e.type,
        reason: e.data.reason,
        text: `failed${e.data.forced ? ' (forceStop)' : ''}${e.data.reason ? `: ${e.data.reason}` : ''}`,
      };
    case 'RetryScheduleReset':
      return { at: e.data.at, type: e.type, text: 'retry schedule reset: every pending retry is due now' };
    case 'PassFailed':
      return {
        at: e.data.at,
        type: e.type,
        outcome: 'error',
        reason: e.data.error,
        retryAt: e.data.retryAt,
        text: `pass failed: ${e.data.error}; next pass at ${e.data.retryAt}`,
      };
    default: {
      // An event type this build does not know (a newer writer): keep it in the history rather than hide it.
      const unknown = e as { type: string; data?: { at?: unknown } };
      const at = unknown.data?.at;
      return { at: typeof at === 'string' ? at : '', type: unknown.type, text: unknown.type };
    }
  }
};

/** Replays `events` (a transaction's whole stream) into its timeline. Pure. */
export const buildTimeline = (gid: Gid, events: readonly TxEvent[]): Timeline => {
  let tx: GlobalTransaction = initialState;
  const entries: TimelineEntry[] = [];
  for (const [revision, e] of events.entries()) {
    const facts = describe(e, tx);
    const before = tx.status;
    // An audit view shows the whole history: an event this build cannot apply (a newer writer's type) is listed,
    // marked, and the state stays as it was, instead of hiding every event after it.
    let notApplied = '';
    try {
      tx = evolve(tx, e);
    } catch (err) {
      notApplied = ` (not applied by this build: ${err instanceof Error ? err.message : String(err)})`;
    }
    entries.push({
      revision,
      ...facts,
      text: `${facts.text}${notApplied}`,
      status: tx.status,
      statusChanged: tx.status !== before,
    });
  }
  return {
    gid,
    transType: tx.status === 'none' ? null : tx.definition.transType,
    status: tx.status,
    version: events.length - 1,
    events: entries,
    compensations: entries.flatMap((e) =>
      e.branchId !== undefined && e.op !== undefined && e.outcome && UNDO_OPS.has(e.op)
        ? [{ branchId: e.branchId, op: e.op, at: e.at, outcome: e.outcome, ...(e.url ? { url: e.url } : {}) }]
        : [],
    ),
  };
};

/** Keeps the events recorded within [since, until] (epoch ms, either end open). */
export const timelineWithin = (t: Timeline, since?: number, until?: number): Timeline => {
  const inside = (at: string): boolean => {
    const ms = Date.parse(at);
    return (since === undefined || ms >= since) && (until === undefined || ms <= until);
  };
  return {
    ...t,
    events: t.events.filter((e) => inside(e.at)),
    compensations: t.compensations.filter((c) => inside(c.at)),
  };
};

/** The timeline as text, one line per event (`time  #revision  status  what happened`), then the compensations. */
export const formatTimeline = (t: Timeline): string => {
  const lines = [`gid ${t.gid}  ${t.transType ?? '-'}  ${t.status}  (revision ${t.version})`];
  for (const e of t.events) {
    const status = e.statusChanged ? `→ ${e.status}` : '';
    lines.push(`  ${e.at.padEnd(24)}  #${String(e.revision).padEnd(4)} ${status.padEnd(12)} ${e.text}`);
  }
  if (t.compensations.length) {
    lines.push('  compensations, in order:');
    for (const [i, c] of t.compensations.entries()) {
      lines.push(`    ${i + 1}. ${c.at}  ${c.branchId}/${c.op}  ${c.outcome}${c.url ? `  ${c.url}` : ''}`);
    }
  }
  return `${lines.join('\n')}\n`;
};
