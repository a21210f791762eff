import { randomBytes } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { type ActiveTransaction, fold, TxRejected } from '@dtm-ts/domain';
import { branchRecord, nextWake, transactionRecord, type Driver } from '@dtm-ts/engine';
import type { EventLog, ReadModel } from '@dtm-ts/ports';
import { BadRequest } from './bad-request';
import { bodyObject, parseGlobalRequest, requireGid, type Limits } from './validate-global';

export interface DtmRouterDeps {
  readonly driver: Driver;
  readonly log: EventLog;
  readonly readModel: ReadModel;
  readonly limits: Limits;
  readonly requestTimeoutS: number;
  readonly version: string;
}

const SUCCESS = { dtm_result: 'SUCCESS' } as const;

/** 22 characters of base-57, like DTM's shortuuid gids. */
const ALPHABET = '23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
export const newGid = (): string => {
  const bytes = randomBytes(22);
  let s = '';
  for (const b of bytes) s += ALPHABET[b % ALPHABET.length];
  return s;
};

type Handler = (req: Request, res: Response) => Promise<void> | void;
/** Express 5 forwards rejected promises to the error middleware; this only keeps handlers typed alike. */
const route = (h: Handler) => (req: Request, res: Response, next: NextFunction) =>
  Promise.resolve(h(req, res)).catch(next);

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

/** DTM's `/api/dtmsvr` endpoints of the saga engine. */
export const dtmRouter = (deps: DtmRouterDeps): Router => {
  const { driver, log, readModel } = deps;
  const r = express.Router();

  const queryView = (tx: ActiveTransaction, version: number) => {
    const wake = nextWake(tx, version, deps.requestTimeoutS * 1000);
    return {
      transaction: transactionRecord(tx, wake ? { at: wake.at, intervalS: 0 } : undefined),
      branches: tx.branches.map((b) => branchRecord(tx.gid, b)),
    };
  };

  r.get('/version', (_req, res) => {
    res.json({ version: deps.version });
  });

  r.get('/newGid', (_req, res) => {
    res.json({ gid: newGid(), dtm_result: 'SUCCESS' });
  });

  r.post(
    '/submit',
    route(async (req, res) => {
      const { definition, branches } = parseGlobalRequest(req.body, deps.limits);
      const done = await driver.execute(
        definition.gid,
        (now) => ({ type: 'SubmitGlobalTransaction', data: { definition, branches }, metadata: { now } }),
        { assumeNew: true },
      );
      if (!definition.options.waitResult) {
        await driver.kick(definition.gid, done.version, done);
        res.json(SUCCESS);
        return;
      }
      // wait_result: one pass inline, then answer as DTM does (§4.0).
      const pass = await driver.runPass(definition.gid, 0, done);
      const s = pass.state;
      if (s.status === 'succeed') {
        res.json(SUCCESS);
        return;
      }
      const reason = s.status !== 'none' && s.rollbackReason ? s.rollbackReason : 'wait result not return success';
      res.status(409).json({ dtm_result: 'FAILURE', message: reason });
    }),
  );

  r.get(
    '/query',
    route(async (req, res) => {
      const gid = queryString(req, 'gid');
      if (gid === '') throw new BadRequest('no gid specified');
      const { events, version } = await log.read(gid);
      const tx = fold(events);
      if (tx.status === 'none') {
        res.json({ transaction: null, branches: [] });
        return;
      }
      res.json(queryView(tx, version));
    }),
  );

  r.get(
    '/all',
    route(async (req, res) => {
      const gid = queryString(req, 'gid');
      if (gid !== '') {
        const { events } = await log.read(gid);
        const tx = fold(events);
        res.json({ transactions: tx.status === 'none' ? [] : [transactionRecord(tx)], next_position: '' });
        return;
      }
      const limit = queryInt(req, 'limit', 100, 1, 1000)!;
      const page = await readModel.list({
        position: queryString(req, 'position'),
        limit,
        status: queryString(req, 'status') || undefined,
        transType: queryString(req, 'transType') || undefined,
        createTimeStart: queryInt(req, 'createTimeStart', undefined, 0, Number.MAX_SAFE_INTEGER),
        createTimeEnd: queryInt(req, 'createTimeEnd', undefined, 0, Number.MAX_SAFE_INTEGER),
      });
      res.json({ transactions: page.items.map((s) => s.record), next_position: page.next });
    }),
  );

  r.post(
    '/forceStop',
    route(async (req, res) => {
      const gid = requireGid(bodyObject(req.body));
      await driver.execute(gid, (now) => ({ type: 'ForceStop', data: { gid }, metadata: { now } }));
      res.json(SUCCESS);
    }),
  );

  r.post(
    '/resetNextCronTime',
    route(async (req, res) => {
      const gid = requireGid(bodyObject(req.body));
      const done = await driver.execute(gid, (now) => ({
        type: 'ResetNextCronTime',
        data: { gid },
        metadata: { now },
      }));
      if (done.appended > 0) await driver.kick(gid, done.version);
      res.json(SUCCESS);
    }),
  );

  return r;
};

/** Maps errors to DTM's envelope: 409 FAILURE for business refusals, 4xx for bad input, 500 only for our faults. */
export const errorMiddleware =
  (onInternal: (err: unknown, req: Request) => void) =>
  (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    if (err instanceof TxRejected) {
      if (err.code === 'conflict') res.status(409).json({ dtm_result: 'FAILURE', message: err.message });
      else res.status(err.code === 'not-found' ? 404 : 422).json({ message: err.message });
      return;
    }
    if (err instanceof BadRequest) {
      res.status(err.status).json({ message: err.message });
      return;
    }
    const e = err as { type?: string; status?: number; limit?: number; message?: string };
    if (e?.type === 'entity.parse.failed') {
      res.status(400).json({ message: `malformed JSON body: ${e.message ?? ''}` });
      return;
    }
    if (e?.type === 'entity.too.large') {
      res.status(413).json({ message: `request body larger than ${e.limit} bytes` });
      return;
    }
    if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
      res.status(e.status).json({ message: e.message ?? 'bad request' });
      return;
    }
    onInternal(err, req);
    res.status(500).json({ message: `internal error: ${err instanceof Error ? err.message : String(err)}` });
  };
