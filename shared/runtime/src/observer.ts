import type { ActiveTransaction, GlobalTransaction } from '@dtm-ts/domain';
import type { DriverObserver } from '@dtm-ts/engine';
import type { DtmMetrics, Logger } from '@dtm-ts/telemetry';

const model = (tx: GlobalTransaction): string => (tx.status === 'none' ? 'unknown' : tx.definition.transType);

/** The ops a metric label may take: DTM's fixed set; a workflow's client-chosen op names count as `workflow`. */
const LABEL_OPS: ReadonlySet<string> = new Set([
  'action',
  'compensate',
  'confirm',
  'cancel',
  'commit',
  'rollback',
  'msg',
]);

/** A bounded label for a branch op (the label set must not grow with what clients name things). */
export const opLabel = (op: string): string => (LABEL_OPS.has(op) ? op : 'workflow');

/** One line per status change: gid, trace id (pino's mixin), from → to; never payloads or headers. */
const logStatusChange = (logger: Logger, gid: string, before: GlobalTransaction, after: ActiveTransaction): void => {
  logger.info(
    {
      gid,
      transType: after.definition.transType,
      from: before.status,
      to: after.status,
      reason: after.rollbackReason || undefined,
    },
    'transaction status changed',
  );
};

/**
 * Turns what the driver does into metrics and logs: one log line per status change (gid, trace id,
 * from → to; never payloads or headers), DTM's counters, retry counts and append latency.
 */
export const driverObserver = (metrics: DtmMetrics, logger: Logger, now: () => number): DriverObserver => ({
  onBranchResult(_gid, tx, call, outcome) {
    metrics.branchProcess.add(1, { model: model(tx), branchtype: opLabel(call.op), status: outcome.kind });
  },
  onPassFailed(gid, tx, error) {
    metrics.passFailures.add(1, { model: model(tx) });
    logger.error({ gid, err: error }, 'pass failed; recorded as PassFailed, the next pass comes after a backoff');
  },
  onPass(_gid, result) {
    metrics.transactionProcess.add(1, { model: model(result.state), status: result.state.status });
  },
  onAppend(gid, before, after, events, ms) {
    metrics.appendDuration.record(ms);
    for (const e of events) {
      if (e.type === 'BranchRetryScheduled')
        metrics.branchRetries.add(1, { model: model(after), op: opLabel(e.data.op), outcome: e.data.outcome });
      // The msg check-back (op msg) or a workflow's resume callback (its op is the client's name: not a label).
      if (e.type === 'CheckBackRetryScheduled') {
        const m = model(after);
        metrics.branchRetries.add(1, { model: m, op: m === 'workflow' ? 'callback' : 'msg', outcome: e.data.outcome });
      }
    }
    if (after.status === 'none' || before.status === after.status) return;
    if (logger.isLevelEnabled('info')) logStatusChange(logger, gid, before, after);
    if (after.status === 'succeed' || after.status === 'failed') {
      metrics.transactionHandled.record(now() - after.createTime, {
        model: after.definition.transType,
        status: after.status,
      });
    }
  },
});
