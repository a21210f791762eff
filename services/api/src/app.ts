import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { tracer, tracingOn, type DtmMetrics, type Logger } from '@dtm-ts/telemetry';
import { authMiddleware, ENDPOINT_SCOPES, type Authorizer } from './edge/auth';
import { dtmRouter, errorMiddleware } from './http/dtm-router';
import { DtmService, type DtmServiceDeps } from './http/dtm-service';
import { jsonRpcHandler } from './http/json-rpc';
import { consoleRouter, type ConsoleDeps } from './console/console-router';

export interface ApiDeps extends DtmServiceDeps {
  readonly logger: Logger;
  readonly maxBodyBytes: number;
  readonly metrics?: DtmMetrics;
  /** Who may call what (`edge/auth.ts`); absent: everyone may call everything, as DTM. */
  readonly auth?: Authorizer;
  /** The admin console at `/` and `/tx/<gid>`; without it only the API is served. */
  readonly console?: ConsoleDeps;
}

/** DTM labels metrics by the API's last path segment; unknown paths share one label so it stays bounded. */
const API_NAMES = new Set(Object.keys(ENDPOINT_SCOPES));
const labelOf = (path: string): string => {
  const parts = path.toLowerCase().split('/').filter(Boolean);
  const name = parts[0] === 'api' && parts[1] === 'dtmsvr' ? parts[2] : parts[1];
  return name && API_NAMES.has(name) ? name : 'other';
};
/** Labels of the paths seen, so a request does not split its path again; cleared when full (paths are the caller's). */
const labels = new Map<string, string>();
const apiLabel = (path: string): string => {
  let label = labels.get(path);
  if (label === undefined) {
    if (labels.size >= 1024) labels.clear();
    label = labelOf(path);
    labels.set(path, label);
  }
  return label;
};

/** DTM's request metrics once the answer is sent. */
const recordRequest = (metrics: DtmMetrics | undefined, api: string, statusCode: number, t0: number): void => {
  metrics?.serverProcess.add(1, { type: 'http', api, status: statusCode < 400 ? 'ok' : 'fail' });
  metrics?.serverDuration.record(performance.now() - t0, { type: 'http', api });
};

/**
 * One server span per request (continuing the caller's traceparent), and DTM's request metrics.
 * The handler runs inside the span's context, so appends, inline passes and queued jobs join it.
 */
const observeRequests =
  (metrics: DtmMetrics | undefined) =>
  (req: Request, res: Response, next: NextFunction): void => {
    const api = apiLabel(req.path);
    const t0 = performance.now();
    if (!tracingOn()) {
      // No span to make: the metrics alone.
      res.on('finish', () => recordRequest(metrics, api, res.statusCode, t0));
      next();
      return;
    }
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const span = tracer().startSpan(
      `${req.method} ${api}`,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'url.path': req.path } },
      parent,
    );
    res.on('finish', () => {
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
      recordRequest(metrics, api, res.statusCode, t0);
    });
    context.with(trace.setSpan(parent, span), next);
  };

/** The HTTP API: DTM's routes under /api/dtmsvr, JSON-RPC at /api/json-rpc, /api/ping, and the console at `/`. */
export const createApiApp = (deps: ApiDeps, svc = new DtmService(deps)): Express => {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(observeRequests(deps.metrics));
  // Before the body parser: a refused request is not read, and nothing it says is acted on.
  const auth = deps.auth;
  if (auth?.enabled) {
    app.use(authMiddleware(auth, (info) => deps.logger.warn(info, 'request refused: not authorized')));
  }
  // Any content type: curl users often forget the header, and DTM's gin binder reads JSON regardless.
  app.use(express.json({ limit: deps.maxBodyBytes, type: () => true, strict: false }));
  const metrics = deps.metrics;
  if (metrics) app.get('/api/metrics', (req, res) => metrics.handle(req, res));
  app.all('/api/ping', (_req, res) => {
    res.json({ msg: 'pong' });
  });
  app.use('/api/dtmsvr', dtmRouter(svc, { timeoutToFailS: deps.timeoutToFailS }));
  app.post('/api/json-rpc', (req, res, next) => {
    jsonRpcHandler(svc)(req, res).catch(next);
  });
  // JSON-RPC answers even unparsable requests with HTTP 200 and a -32700 error.
  app.use('/api/json-rpc', (err: unknown, _req: Request, res: Response, next: NextFunction) => {
    const e = err as { type?: string; message?: string };
    if (e?.type !== 'entity.parse.failed') return next(err);
    res.status(200).json({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32700, message: `parse error: ${e.message ?? ''}` },
      result: null,
    });
  });
  if (deps.console) app.use(consoleRouter(deps.console));
  app.use((req, res) => {
    res.status(404).json({ message: `no route ${req.method} ${req.path}` });
  });
  app.use(errorMiddleware((err, req) => deps.logger.error({ err, path: req.path }, 'request failed')));
  return app;
};
