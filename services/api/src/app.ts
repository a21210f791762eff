import express, { type Express } from 'express';
import type { Logger } from '@dtm-ts/telemetry';
import { dtmRouter, errorMiddleware, type DtmRouterDeps } from './http/dtm-router';

export interface ApiDeps extends DtmRouterDeps {
  readonly logger: Logger;
  readonly maxBodyBytes: number;
}

/** The HTTP API: DTM's routes under /api/dtmsvr, plus /api/ping. */
export const createApiApp = (deps: ApiDeps): Express => {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Any content type: curl users often forget the header, and DTM's gin binder reads JSON regardless.
  app.use(express.json({ limit: deps.maxBodyBytes, type: () => true, strict: false }));
  app.all('/api/ping', (_req, res) => {
    res.json({ msg: 'pong' });
  });
  app.use('/api/dtmsvr', dtmRouter(deps));
  app.use((req, res) => {
    res.status(404).json({ message: `no route ${req.method} ${req.path}` });
  });
  app.use(errorMiddleware((err, req) => deps.logger.error({ err, path: req.path }, 'request failed')));
  return app;
};
