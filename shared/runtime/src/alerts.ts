import type { RedisClient } from '@dtm-ts/adapters';
import { CHECK_BACK_BRANCH_ID, type GlobalTransaction, type TxEvent } from '@dtm-ts/domain';
import type { DriverObserver } from '@dtm-ts/engine';
import type { Logger } from '@dtm-ts/telemetry';

/**
 * DTM's AlertRetryLimit / AlertWebHook (reference §3.3): a branch that failed `limit` times in a row
 * raises one alert, POSTed as JSON to a webhook and kept for the console.
 */
export interface RetryAlert {
  readonly gid: string;
  readonly trans_type: string;
  /** Status of the transaction when the alert was raised. */
  readonly status: string;
  readonly branch_id: string;
  readonly op: string;
  /** The answer of the last call (status and body, or the transport error). */
  readonly error: string;
  /** Consecutive failed calls of this branch operation so far. */
  readonly retry_count: number;
  /** When the branch is called next (ISO-8601). */
  readonly next_retry_at: string;
  /** When the alert was raised (ISO-8601). */
  readonly at: string;
}

/** A crossing: where the run of consecutive errors started (1-based call number), so its alert has one identity. */
export interface Crossing {
  readonly alert: Omit<RetryAlert, 'at'>;
  /** Unique per branch operation and run of errors: every retry of the same run maps to it. */
  readonly key: string;
}

/**
 * The crossings an append records: a `BranchRetryScheduled` (or a check-back retry) whose branch has now
 * failed at least `limit` times in a row. Pure. Every later retry of the same run gives the same key,
 * so deduplicating on the key makes one alert per crossing, whichever worker sees it first.
 */
export const crossingsOf = (after: GlobalTransaction, events: readonly TxEvent[], limit: number): Crossing[] => {
  if (after.status === 'none') return [];
  const out: Crossing[] = [];
  const base = { gid: after.gid, trans_type: after.definition.transType, status: after.status };
  for (const e of events) {
    if (e.type === 'BranchRetryScheduled' && e.data.outcome === 'error') {
      const b = after.branches.find((x) => x.branchId === e.data.branchId && x.op === e.data.op);
      if (!b || b.errors < limit) continue;
      const runStart = b.attempts - b.errors + 1;
      out.push({
        key: `${after.gid}\u0000${b.branchId}\u0000${b.op}\u0000${runStart}`,
        alert: {
          ...base,
          branch_id: b.branchId,
          op: b.op,
          error: e.data.detail,
          retry_count: b.errors,
          next_retry_at: e.data.retryAt,
        },
      });
    }
    if (e.type === 'CheckBackRetryScheduled' && e.data.outcome === 'error') {
      const c = after.checkBack;
      if (c.errors < limit) continue;
      const op = after.definition.workflow?.name ?? 'msg';
      out.push({
        key: `${after.gid}\u0000${CHECK_BACK_BRANCH_ID}\u0000${op}\u0000${c.attempts - c.errors + 1}`,
        alert: {
          ...base,
          branch_id: CHECK_BACK_BRANCH_ID,
          op,
          error: e.data.detail,
          retry_count: c.errors,
          next_retry_at: e.data.retryAt,
        },
      });
    }
  }
  return out;
};

/** Where alerts are kept in Redis: one claim key per crossing, and a capped list for the console. */
export const alertKeys = (prefix: string) => ({
  /** `SET NX` of this key makes one process the sender of a crossing's alert. */
  claim: (crossingKey: string) => `${prefix}:alert-claim:${crossingKey}`,
  /** ZSET, score = epoch ms, member = the alert JSON; newest kept. */
  list: `${prefix}:alerts`,
});

/** Crossing claims outlive any plausible run of retries (the backoff cap is an hour by default). */
const CLAIM_TTL_S = 30 * 24 * 3600;
/** Alerts the console keeps. */
export const ALERTS_KEPT = 1000;

export interface AlertOptions {
  readonly redis: RedisClient;
  readonly prefix: string;
  readonly limit: number;
  readonly webhook?: string;
  readonly logger: Logger;
  readonly now: () => number;
  /** Webhook request timeout, ms (default 5000). */
  readonly timeoutMs?: number;
}

/** The alerts raised, newest first. */
export const listAlerts = async (redis: RedisClient, prefix: string, limit = 100): Promise<RetryAlert[]> => {
  const raw = await redis.zrevrange(alertKeys(prefix).list, 0, Math.max(0, limit - 1));
  return raw.map((j) => JSON.parse(j) as RetryAlert);
};

/**
 * Raises one alert for `c` unless some process already did (Redis `SET NX` on the crossing), records
 * it for the console, and POSTs it to the webhook. Resolves true when this call raised it.
 */
export const raiseAlert = async (opts: AlertOptions, c: Crossing): Promise<boolean> => {
  const keys = alertKeys(opts.prefix);
  const won = await opts.redis.set(keys.claim(c.key), '1', 'EX', CLAIM_TTL_S, 'NX');
  if (won !== 'OK') return false;
  const at = opts.now();
  const alert: RetryAlert = { ...c.alert, at: new Date(at).toISOString() };
  const body = JSON.stringify(alert);
  await opts.redis
    .multi()
    .zadd(keys.list, at, body)
    .zremrangebyrank(keys.list, 0, -ALERTS_KEPT - 1)
    .exec();
  opts.logger.warn(
    { gid: alert.gid, branchId: alert.branch_id, op: alert.op, retryCount: alert.retry_count },
    'branch retried past ALERT_RETRY_LIMIT',
  );
  if (opts.webhook) {
    const res = await fetch(opts.webhook, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(opts.timeoutMs ?? 5000),
    });
    await res.arrayBuffer().catch(() => undefined);
    if (!res.ok) throw new Error(`alert webhook answered ${res.status}`);
  }
  return true;
};

/** The driver observer that raises alerts; its work runs in the background, never slowing the pass. */
export const alertObserver = (opts: AlertOptions): DriverObserver => ({
  onAppend(gid, _before, after, events) {
    for (const c of crossingsOf(after, events, opts.limit)) {
      raiseAlert(opts, c).catch((err: unknown) =>
        opts.logger.warn(
          { gid, err: err instanceof Error ? err.message : String(err) },
          'could not raise a retry alert (the webhook is not retried)',
        ),
      );
    }
  },
});

/** One observer that calls each of `observers` in turn. */
export const composeObservers = (...observers: DriverObserver[]): DriverObserver => ({
  onBranchResult: (...args) => observers.forEach((o) => o.onBranchResult?.(...args)),
  onPass: (...args) => observers.forEach((o) => o.onPass?.(...args)),
  onAppend: (...args) => observers.forEach((o) => o.onAppend?.(...args)),
  onPassFailed: (...args) => observers.forEach((o) => o.onPassFailed?.(...args)),
});
