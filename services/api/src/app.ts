import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from '@dtm-ts/telemetry';
import { dtmRouter, errorMiddleware } from './http/dtm-router';
import { DtmService, type DtmServiceDeps } from './http/dtm-service';
import { jsonRpcHandler } from './http/json-rpc';

export interface ApiDeps extends DtmServiceDeps {
  readonly logger: Logger;
  readonly maxBodyBytes: number;
}

/** The HTTP API: DTM's routes under /api/dtmsvr, JSON-RPC at /api/json-rpc, and /api/ping. */
export const createApiApp = (deps: ApiDeps): Express => {
  const svc = new DtmService(deps);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Any content type: curl users often forget the header, and DTM's gin binder reads JSON regardless.
  app.use(express.json({ limit: deps.maxBodyBytes, type: () => true, strict: false }));
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
    res
      .status(200)
      .json({
        jsonrpc: '2.0',
        id: null,
        error: { code: -32700, message: `parse error: ${e.message ?? ''}` },
        result: null,
      });
  });
  app.use((req, res) => {
    res.status(404).json({ message: `no route ${req.method} ${req.path}` });
  });
  app.use(errorMiddleware((err, req) => deps.logger.error({ err, path: req.path }, 'request failed')));
  return app;
};
