import {
  iso as isoOf,
  payloadBase64,
  plan,
  type ActiveTransaction,
  type BranchState,
  type Plan,
  type Policy,
  type Protocol,
} from '@dtm-ts/domain';
import type { TransactionSummary } from '@dtm-ts/ports';

const iso = (t: number | null): string | undefined => (t === null ? undefined : isoOf(t));

const hasKeys = (o: object): boolean => {
  for (const _ in o) return true;
  return false;
};

/**
 * Drops empty values, as Go's `omitempty` does in DTM's JSON. A loop, not entries/filter/fromEntries: the
 * projector builds a record per append, and the intermediate arrays were a measurable share of its garbage.
 */
const compact = (o: Record<string, unknown>): Record<string, unknown> => {
  const out: Record<string, unknown> = {};
  for (const k in o) {
    const v = o[k];
    if (v === undefined || v === '' || v === 0 || v === false) continue;
    if (typeof v === 'object' && v !== null && !hasKeys(v)) continue;
    out[k] = v;
  }
  return out;
};

/** The global transaction as DTM's `/query` and `/all` print it (field names of `dtmsvr/storage/trans.go`). */
export const transactionRecord = (
  tx: ActiveTransaction,
  next?: { at: number; intervalS: number },
): Record<string, unknown> => {
  const d = tx.definition;
  return compact({
    gid: tx.gid,
    trans_type: d.transType,
    status: tx.status,
    protocol: d.protocol,
    steps: d.steps,
    payloads: d.payloads,
    custom_data: d.customData,
    query_prepared: d.queryPrepared,
    create_time: iso(tx.createTime),
    update_time: iso(tx.updateTime),
    finish_time: iso(tx.finishTime),
    rollback_time: iso(tx.rollbackTime),
    rollback_reason: tx.rollbackReason,
    result: tx.result,
    timeout_to_fail: d.options.timeoutToFail,
    request_timeout: d.options.requestTimeout,
    retry_interval: d.options.retryInterval,
    retry_limit: d.options.retryLimit,
    retry_count: tx.retryCount,
    // Not DTM's: passes that threw in a row and the last error (DESIGN invariant 9); gone once it moves again.
    pass_failures: tx.passFailures.count,
    pass_error: tx.passFailures.error,
    branch_headers: d.options.branchHeaders,
    wait_result: d.options.waitResult,
    concurrent: d.ordering.concurrent,
    next_cron_time: next ? iso(next.at) : undefined,
    next_cron_interval: next?.intervalS,
  });
};

/** A branch row as DTM's `/query` prints it; `bin_data` is base64 as Go encodes []byte. */
export const branchRecord = (gid: string, b: BranchState, protocol: Protocol = 'http'): Record<string, unknown> =>
  compact({
    gid,
    url: b.url,
    bin_data: payloadBase64(b.data, protocol),
    branch_id: b.branchId,
    op: b.op,
    status: b.status,
    create_time: iso(b.createTime),
    update_time: iso(b.updateTime),
    finish_time: b.op === 'action' || b.status === 'succeed' ? iso(b.finishTime) : undefined,
  });

/** When the transaction next needs a driver, and the pass key that schedules it; null once finished. */
export const nextWake = (
  tx: ActiveTransaction,
  version: number,
  requestTimeoutMs: number,
  policy: Policy,
): { at: number; key: string } | null => {
  const p: Plan = plan(tx, tx.updateTime, policy);
  if (p.kind === 'done') return null;
  if (p.kind === 'wait') return { at: p.until, key: waitKey(version, p.until) };
  // Due now: a driver should be on it; it is overdue once a call could have timed out.
  return { at: tx.updateTime + requestTimeoutMs, key: immediateKey(version) };
};

/** Pass keys: one immediate pass per stream version, one delayed pass per (version, wake time). */
export const immediateKey = (version: number): string => `${version}`;
export const waitKey = (version: number, at: number): string => `${version}.w${at}`;

export interface SummaryWithWake extends TransactionSummary {
  readonly wakeKey: string | null;
}

/** The read model's view of a transaction at `version`. */
export const summarize = (
  tx: ActiveTransaction,
  version: number,
  requestTimeoutMs: number,
  policy: Policy,
): { summary: SummaryWithWake; wakeAt: number | null } => {
  const wake = nextWake(tx, version, requestTimeoutMs, policy);
  return {
    summary: {
      gid: tx.gid,
      transType: tx.definition.transType,
      status: tx.status,
      createTime: tx.createTime,
      record: transactionRecord(tx),
      wakeKey: wake?.key ?? null,
    },
    wakeAt: wake?.at ?? null,
  };
};
