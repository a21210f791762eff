import { context, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { BranchOutcome, GlobalTransaction } from '@dtm-ts/domain';
import type { BranchRequest, BranchTransport, EventLog } from '@dtm-ts/ports';
import { Attr, contextFrom, currentTraceparent, inSpan, tracingOn } from '@dtm-ts/telemetry';

/**
 * The trace a scheduled pass should join: the active one, else the transaction's own; `''` when
 * there is none, so the pass does not read the log just to find that out.
 */
export const traceFor = (state?: GlobalTransaction): string =>
  currentTraceparent() ?? (state && state.status !== 'none' ? state.trace : undefined) ?? '';

/** The event log, each append in a `dtm.append` span (straight through while tracing is off). */
export const tracedEventLog = (log: EventLog): EventLog => ({
  read: (gid) => log.read(gid),
  append: (gid, events, expected) =>
    tracingOn()
      ? inSpan('dtm.append', { [Attr.gid]: gid, 'dtm.events': events.length }, () => log.append(gid, events, expected))
      : log.append(gid, events, expected),
});

/**
 * The branch transport, each call in a `dtm.branch <op>` client span whose W3C `traceparent` goes along
 * as a header, so the RM's own spans join the same trace.
 */
export const tracedTransport = (transport: BranchTransport): BranchTransport => ({
  call: (req) => (tracingOn() ? tracedCall(transport, req) : transport.call(req)),
});

const tracedCall = (transport: BranchTransport, req: BranchRequest): Promise<BranchOutcome> =>
  inSpan(
    `dtm.branch ${req.op}`,
    { [Attr.gid]: req.gid, [Attr.branchId]: req.branchId, [Attr.op]: req.op, 'url.full': req.url },
    async (span) => {
      const traceparent = currentTraceparent();
      const outcome = await transport.call(traceparent ? { ...req, headers: { ...req.headers, traceparent } } : req);
      span.setAttribute(Attr.outcome, outcome.kind);
      if (outcome.kind === 'error') span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.detail });
      return outcome;
    },
    undefined,
    SpanKind.CLIENT,
  );

/**
 * Runs one pass in a `dtm.pass` span, child of `trace` (a W3C traceparent) when it names a sampled-or-not
 * real trace, else of the active context; the span notes the status the pass left and whether it was skipped.
 */
export const inPassSpan = <R extends { state: GlobalTransaction; skipped?: boolean }>(
  gid: string,
  trace: string | undefined,
  pass: () => Promise<R>,
): Promise<R> => {
  if (!tracingOn()) return pass();
  const parent = trace && !trace.startsWith('00-00000000') ? contextFrom(trace) : context.active();
  return inSpan(
    'dtm.pass',
    { [Attr.gid]: gid },
    async (span) => {
      const result = await pass();
      span.setAttribute(Attr.status, result.state.status);
      if (result.skipped) span.setAttribute('dtm.pass.skipped', true);
      return result;
    },
    parent,
  );
};
