import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { TxRejected } from '@dtm-ts/domain';
import { BadRequest } from './bad-request';
import type { DtmService } from './dtm-service';

type Handler = (req: Request, res: Response) => Promise<unknown>;
/** Every route answers the object its service call resolves to, as DTM's WrapHandler2 does. */
const route = (h: Handler) => (req: Request, res: Response, next: NextFunction) => {
  h(req, res).then((body) => res.json(body), next);
};

const queryString = (req: Request, key: string): string => {
  const v = req.query[key];
  if (v === undefined) return '';
  if (typeof v !== 'string') throw new BadRequest(`query parameter ${key} must be given once`);
  return v;
};

const queryInt = (
  req: Request,
  key: string,
  dflt: number | undefined,
  min: number,
  max: number,
): number | undefined => {
  const raw = queryString(req, key);
  if (raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new BadRequest(`${key} must be an integer from ${min} to ${max}`);
  return n;
};

/** DTM's `/api/dtmsvr` endpoints. */
export const dtmRouter = (svc: DtmService, defaults: { timeoutToFailS: number }): Router => {
  const r = express.Router();
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
    route((req) => svc.prepare(req.body)),
  );
  r.post(
    '/submit',
    route((req) => svc.submit(req.body)),
  );
  r.post(
    '/prepareWorkflow',
    route((req) => svc.prepareWorkflow(req.body)),
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
    route((req) => svc.query(queryString(req, 'gid'))),
  );
  r.get(
    '/events',
    route((req) => svc.events(queryString(req, 'gid'))),
  );
  r.get(
    '/all',
    route((req) =>
      svc.all({
        gid: queryString(req, 'gid'),
        position: queryString(req, 'position'),
        limit: queryInt(req, 'limit', 100, 1, 1000)!,
        status: queryString(req, 'status') || undefined,
        transType: queryString(req, 'transType') || undefined,
        createTimeStart: queryInt(req, 'createTimeStart', undefined, 0, Number.MAX_SAFE_INTEGER),
        createTimeEnd: queryInt(req, 'createTimeEnd', undefined, 0, Number.MAX_SAFE_INTEGER),
      }),
    ),
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
    route((req) =>
      svc.resetCronTime(
        queryInt(req, 'timeout', 3 * defaults.timeoutToFailS, 0, 10 * 365 * 24 * 3600)!,
        queryInt(req, 'limit', 100, 1, 10_000)!,
      ),
    ),
  );
  r.get(
    '/subscribe',
    route((req) => svc.subscribe(queryString(req, 'topic'), queryString(req, 'url'), queryString(req, 'remark'))),
  );
  r.get(
    '/unsubscribe',
    route((req) => svc.unsubscribe(queryString(req, 'topic'), queryString(req, 'url'))),
  );
  r.get(
    '/scanKV',
    route((req) =>
      svc.scanKV(queryString(req, 'cat'), queryString(req, 'position'), queryInt(req, 'limit', 100, 1, 1000)!),
    ),
  );
  r.get(
    '/queryKV',
    route((req) => svc.queryKV(queryString(req, 'cat'), queryString(req, 'key'))),
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
