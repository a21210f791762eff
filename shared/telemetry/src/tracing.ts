import {
  context,
  INVALID_SPAN_CONTEXT,
  propagation,
  trace,
  type Context,
  type Span,
  SpanStatusCode,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  NodeTracerProvider,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-node';

export interface TracingOptions {
  readonly serviceName: string;
  /** `none` keeps the API a no-op; `otlp` sends spans over OTLP/HTTP to `otlpEndpoint`. */
  readonly exporter: 'none' | 'otlp';
  readonly otlpEndpoint?: string;
  /** Fraction of new traces recorded (a parent's decision is always followed). */
  readonly sampleRatio: number;
}

let provider: NodeTracerProvider | undefined;

/**
 * Starts the process's tracer provider once: W3C trace context, async-hooks context manager,
 * and the chosen exporter. Tests pass their own exporter (in memory). Returns a shutdown that
 * flushes what is buffered.
 */
export const initTracing = (opts: TracingOptions, testExporter?: SpanExporter): (() => Promise<void>) => {
  if (provider) return () => Promise.resolve();
  const exporter =
    testExporter ?? (opts.exporter === 'otlp' ? new OTLPTraceExporter({ url: opts.otlpEndpoint }) : undefined);
  if (!exporter) {
    // No SDK: spans are no-ops, but trace context still propagates (traceparent in, traceparent out).
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    return () => Promise.resolve();
  }
  provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': opts.serviceName }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(opts.sampleRatio) }),
    spanProcessors: [testExporter ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter)],
  });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  const p = provider;
  return () => p.shutdown();
};

export const tracer = (): Tracer => trace.getTracer('dtm-ts');

/**
 * True once spans are recorded (an exporter is configured). Without one, the hot paths skip the tracing API
 * altogether: no span objects, no context switches, no traceparent injection (the context never holds a span then:
 * the no-op API has no context manager).
 */
export const tracingOn = (): boolean => provider !== undefined;

/** The span `inSpan` hands its function when tracing is off: every call on it does nothing. */
const NO_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** The W3C `traceparent` of the active context (or of `ctx`), if it carries a valid span. */
export const currentTraceparent = (ctx?: Context): string | undefined => {
  // Without a provider the active context is always the root one: nothing to inject.
  if (ctx === undefined && !provider) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(ctx ?? context.active(), carrier);
  return carrier.traceparent;
};

/** A W3C `traceparent` of version 00 with real (not all-zero) trace and parent ids. */
const TRACEPARENT = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;

/**
 * The trace a new transaction records: the active span's (tracing on), else the caller's own `traceparent` as it
 * came, when it is a valid one. With tracing off the TM makes no spans but still passes the AP's trace context on
 * to the branches, as any hop that does not trace should, so the RMs' spans join the AP's trace.
 */
export const transactionTrace = (inbound: string | undefined): string | undefined => {
  if (provider) return currentTraceparent();
  return inbound !== undefined && TRACEPARENT.test(inbound) ? inbound : undefined;
};

/** A context whose parent span is the one a `traceparent` names (or the active context when absent). */
export const contextFrom = (traceparent: string | undefined, base: Context = context.active()): Context =>
  traceparent ? propagation.extract(base, { traceparent }) : base;

/**
 * Runs `fn` in a new active span; records an exception and error status when it throws. With tracing off, runs
 * `fn` with a span that records nothing, at no cost (callers may build `attributes` lazily with {@link tracingOn}).
 */
export const inSpan = <T>(
  name: string,
  attributes: Record<string, string | number | boolean>,
  fn: (span: Span) => Promise<T>,
  parent?: Context,
  kind?: number,
): Promise<T> => {
  if (!provider) {
    try {
      return fn(NO_SPAN);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }
  return tracer().startActiveSpan(name, { attributes, kind }, parent ?? context.active(), async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      span.recordException(err instanceof Error ? err : new Error(String(err)));
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw err;
    } finally {
      span.end();
    }
  });
};
