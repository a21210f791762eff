import type { IncomingMessage, ServerResponse } from 'node:http';
import { metrics, type Attributes, type Counter, type Histogram, type Meter } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

/**
 * DTM's metric families (reference §8), so dashboards built for DTM keep working — without a
 * per-gid or per-branch-id label, which grows without bound in DTM — plus our own.
 */
export interface DtmMetrics {
  readonly serverProcess: Counter;
  readonly serverDuration: Histogram;
  readonly transactionProcess: Counter;
  readonly transactionHandled: Histogram;
  readonly branchProcess: Counter;
  readonly branchRetries: Counter;
  readonly appendDuration: Histogram;
  /** Passes that threw and were recorded as PassFailed, by model. */
  readonly passFailures: Counter;
  readonly meter: Meter;
  /** Serves Prometheus text (GET /api/metrics). */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Registers a gauge read at scrape time. */
  gauge(name: string, description: string, read: () => Promise<{ value: number; attributes?: Attributes }[]>): void;
  shutdown(): Promise<void>;
}

let singleton: DtmMetrics | undefined;

/** One meter provider per process, exposed through a Prometheus exporter that does not open its own port. */
export const initMetrics = (): DtmMetrics => {
  if (singleton) return singleton;
  const exporter = new PrometheusExporter({
    preventServerStart: true,
    withoutScopeInfo: true,
    withoutTargetInfo: true,
  });
  const provider = new MeterProvider({ readers: [exporter] });
  metrics.setGlobalMeterProvider(provider);
  const meter = provider.getMeter('dtm-ts');
  const ms = {
    unit: 'ms',
    advice: { explicitBucketBoundaries: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000] },
  };
  singleton = {
    meter,
    serverProcess: meter.createCounter('dtm_server_process_total', {
      description: 'API requests by api and status (ok|fail)',
    }),
    serverDuration: meter.createHistogram('dtm_server_response_duration', { description: 'API response time', ...ms }),
    transactionProcess: meter.createCounter('dtm_transaction_process_total', {
      description: 'Processing passes by model and status',
    }),
    transactionHandled: meter.createHistogram('dtm_transaction_handled_duration', {
      description: 'Time from creation to the final status, by model and status',
      ...ms,
    }),
    branchProcess: meter.createCounter('dtm_branch_process_total', {
      description: 'Branch calls by model, branchtype (op) and status',
    }),
    branchRetries: meter.createCounter('dtm_branch_retries_total', {
      description: 'Branch retries scheduled, by model, op and outcome (ongoing|error)',
    }),
    appendDuration: meter.createHistogram('dtm_event_append_duration', {
      description: 'Event-log append latency',
      ...ms,
    }),
    passFailures: meter.createCounter('dtm_pass_failures_total', {
      description: 'Passes that threw (recorded as PassFailed and retried after a backoff), by model',
    }),
    handle: (req, res) => exporter.getMetricsRequestHandler(req, res),
    gauge: (name, description, read) => {
      const g = meter.createObservableGauge(name, { description });
      g.addCallback(async (result) => {
        for (const r of await read()) result.observe(r.value, r.attributes);
      });
    },
    shutdown: () => provider.shutdown(),
  };
  return singleton;
};
