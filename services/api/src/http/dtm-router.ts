import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { TxRejected } from '@dtm-ts/domain';
import {
  allQuerySchema,
  queryGidSchema,
  queryKvQuerySchema,
  resetCronTimeQuerySchema,
  scanKvQuerySchema,
} from '../edge/schemas';
import { parseInput } from '../edge/wire';
import { BadRequest } from './bad-request';
import type { DtmService } from './dtm-service';

/** A query parameter as given: a string, or an array when repeated (the schemas refuse that). */
const rawQuery = (req: Request, key: string): string => req.query[key] as string;

/** The caller's W3C `traceparent` header (one value; a repeated header is ignored). */
export const traceparentOf = (req: Request): string | undefined => {
  const v = req.headers.traceparent;
  return typeof v === 'string' ? v : undefined;
};

type Handler = (req: Request, res: Response) => Promise<unknown>;
/** Every route answers the object its service call resolves to, as DTM's WrapHandler2 does. */
const route = (h: Handler) => (req: Request, res: Response, next: NextFunction) => {
  Promise.resolve()
    .then(() => h(req, res))
    .then((body) => res.json(body), next);
};

/** DTM's `/api/dtmsvr` endpoints. */
export const dtmRouter = (svc: DtmService, defaults: { timeoutToFailS: number }): Router => {
  const r = express.Router();
  const resetCronTimeQuery = resetCronTimeQuerySchema(3 * defaults.timeoutToFailS);
  r.get(
    '/version',
    route(() => Promise.resolve(svc.version())),
  );
  r.get(
    '/newGid',
    route(() => Promise.resolve(svc.newGid())),
  );
  r.post(
    '/prepare',
    route((req) => svc.prepare(req.body, traceparentOf(req))),
  );
  r.post(
    '/submit',
    route((req) => svc.submit(req.body, traceparentOf(req))),
  );
  r.post(
    '/prepareWorkflow',
    route((req) => svc.prepareWorkflow(req.body, traceparentOf(req))),
  );
  r.post(
    '/abort',
    route((req) => svc.abort(req.body)),
  );
  for (const path of ['/registerBranch', '/registerTccBranch', '/registerXaBranch']) {
    r.post(
      path,
      route((req) => svc.registerBranch(req.body)),
    );
  }
  r.get(
    '/query',
    route((req) => svc.query(parseInput(queryGidSchema, req.query))),
  );
  r.get(
    '/events',
    route((req) => svc.events(parseInput(queryGidSchema, req.query))),
  );
  r.get(
    '/all',
    route((req) => svc.all(parseInput(allQuerySchema, req.query))),
  );
  r.post(
    '/forceStop',
    route((req) => svc.forceStop(req.body)),
  );
  r.post(
    '/resetNextCronTime',
    route((req) => svc.resetNextCronTime(req.body)),
  );
  r.get(
    '/resetCronTime',
    route((req) => {
      const { timeoutS, limit } = parseInput(resetCronTimeQuery, req.query);
      return svc.resetCronTime(timeoutS, limit);
    }),
  );
  r.get(
    '/subscribe',
    route((req) => svc.subscribe(rawQuery(req, 'topic'), rawQuery(req, 'url'), rawQuery(req, 'remark'))),
  );
  r.get(
    '/unsubscribe',
    route((req) => svc.unsubscribe(rawQuery(req, 'topic'), rawQuery(req, 'url'))),
  );
  r.get(
    '/scanKV',
    route((req) => {
      const { cat, position, limit } = parseInput(scanKvQuerySchema, req.query);
      return svc.scanKV(cat, position, limit);
    }),
  );
  r.get(
    '/queryKV',
    route((req) => {
      const { cat, key } = parseInput(queryKvQuerySchema, req.query);
      return svc.queryKV(cat, key);
    }),
  );
  r.delete(
    '/topic/:topicName',
    route((req) => svc.deleteTopic(String(req.params.topicName ?? ''))),
  );
  return r;
};

/** Status and body of an error, in DTM's envelope: 409 FAILURE for business refusals, 4xx for bad input, 500 for our faults. */
export const errorAnswer = (err: unknown): { status: number; body: Record<string, unknown>; internal: boolean } => {
  if (err instanceof TxRejected) {
    if (err.code === 'conflict')
      return { status: 409, body: { dtm_result: 'FAILURE', message: err.message }, internal: false };
    return { status: err.code === 'not-found' ? 404 : 422, body: { message: err.message }, internal: false };
  }
  if (err instanceof BadRequest) return { status: err.status, body: { message: err.message }, internal: false };
  const e = err as { type?: string; status?: number; limit?: number; message?: string };
  if (e?.type === 'entity.parse.failed') {
    return { status: 400, body: { message: `malformed JSON body: ${e.message ?? ''}` }, internal: false };
  }
  if (e?.type === 'entity.too.large') {
    return { status: 413, body: { message: `request body larger than ${e.limit} bytes` }, internal: false };
  }
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
    return { status: e.status, body: { message: e.message ?? 'bad request' }, internal: false };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { status: 500, body: { message: `internal error: ${message}` }, internal: true };
};

export const errorMiddleware =
  (onInternal: (err: unknown, req: Request) => void) =>
  (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const a = errorAnswer(err);
    if (a.internal) onInternal(err, req);
    res.status(a.status).json(a.body);
  };
