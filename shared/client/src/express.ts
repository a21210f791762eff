import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { BranchBarrier, type RedisBarrierLike, type SqlBarrierStore } from './barrier';
import { DtmBadRequest, DtmFailure, DtmOngoing } from './errors';
import { queryValue, type QueryLike } from './query-params';

/** DTM's result words (reference §1.1): the `dtm_result` of an answer. */
export const DtmResult = { SUCCESS: 'SUCCESS', FAILURE: 'FAILURE', ONGOING: 'ONGOING' } as const;

/** The branch a TM call is about: the query parameters it always sends, plus those an AP adds. */
export interface BranchInfo {
  readonly gid: string;
  readonly transType: string;
  readonly branchId: string;
  /** `action`, `compensate`, `try`, `confirm`, `cancel`, `commit`, `rollback`, or `msg` for a check-back. */
  readonly op: string;
  /** The TM's API base; only on calls an AP makes (TCC try, XA action), '' otherwise. */
  readonly dtm: string;
  /** XA action only: the url for commit/rollback. */
  readonly phase2Url: string;
}

/**
 * Reads gid, trans_type, branch_id and op (and dtm, phase2_url when present) from a branch request's query.
 *
 * @throws {@link DtmBadRequest} when gid, trans_type, branch_id or op is missing
 */
export const branchInfo = (query: QueryLike): BranchInfo => {
  const info: BranchInfo = {
    gid: queryValue(query, 'gid'),
    transType: queryValue(query, 'trans_type'),
    branchId: queryValue(query, 'branch_id'),
    op: queryValue(query, 'op'),
    dtm: queryValue(query, 'dtm'),
    phase2Url: queryValue(query, 'phase2_url'),
  };
  if (!info.gid || !info.transType || !info.branchId || !info.op) {
    throw new DtmBadRequest(
      `not a branch request: gid '${info.gid}', trans_type '${info.transType}', branch_id '${info.branchId}', op '${info.op}'`,
    );
  }
  return info;
};

/** Answers SUCCESS: 200 `{"dtm_result":"SUCCESS"}`. */
export const replySuccess = (res: Response): void => {
  res.status(200).json({ dtm_result: DtmResult.SUCCESS });
};

/** Answers FAILURE: 409 `{"dtm_result":"FAILURE","message":…}`. Final for a saga action or TCC try (rolls back). */
export const replyFailure = (res: Response, message = ''): void => {
  res.status(409).json({ dtm_result: DtmResult.FAILURE, message });
};

/** Answers ONGOING: 425 `{"dtm_result":"ONGOING","message":…}`. The TM asks again after `retry_interval`. */
export const replyOngoing = (res: Response, message = ''): void => {
  res.status(425).json({ dtm_result: DtmResult.ONGOING, message });
};

/**
 * The TM reads FAILURE or ONGOING anywhere in a body as that result (§3.2): an error text that happens to
 * contain the word must not turn a retryable 500 into a business failure.
 */
const defuse = (text: string): string => text.replace(/FAILURE/g, 'Failure').replace(/ONGOING/g, 'Ongoing');

/**
 * Answers `err` with the status DTM reads it as: {@link DtmFailure} → 409, {@link DtmOngoing} → 425,
 * {@link DtmBadRequest} → 400, anything else → 500 (the TM retries with back-off), its message freed of the
 * words FAILURE and ONGOING.
 */
export const replyError = (res: Response, err: unknown): void => {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof DtmFailure) replyFailure(res, message);
  else if (err instanceof DtmOngoing) replyOngoing(res, message);
  else if (err instanceof DtmBadRequest) res.status(400).json({ message: defuse(message) });
  else res.status(500).json({ message: defuse(message) });
};

/**
 * Wraps an async RM handler for express: when it resolves, answers 200 SUCCESS (or, if it resolves to an object,
 * that object as JSON; keep FAILURE and ONGOING out of it), unless the handler answered itself; when it rejects,
 * answers per {@link replyError}.
 *
 * ```ts
 * app.post('/TransIn', express.json(), rmHandler(async (req) => {
 *   await BranchBarrier.fromQuery(req.query).call(store, (tx) => credit(tx, req.body));
 * }));
 * app.post('/TransOut', express.json(), rmHandler(async (req) => {
 *   if (req.body.amount > 1000) throw new DtmFailure('over the limit'); // 409: the saga rolls back
 * }));
 * ```
 */
export const rmHandler =
  (handler: (req: Request, res: Response) => Promise<unknown>): RequestHandler =>
  (req: Request, res: Response, _next: NextFunction): void => {
    handler(req, res).then(
      (value) => {
        if (res.headersSent) return;
        if (value !== undefined && value !== null && typeof value === 'object') res.status(200).json(value);
        else replySuccess(res);
      },
      (err: unknown) => {
        if (!res.headersSent) replyError(res, err);
      },
    );
  };

/**
 * An express handler for a two-phase message's check-back (`query_prepared`) on the database (or Redis) the AP's
 * local transactions run in: 200 when the local transaction committed, 409 when it rolled back or never ran.
 */
export const queryPreparedHandler = (store: SqlBarrierStore<unknown> | RedisBarrierLike): RequestHandler =>
  rmHandler((req) => BranchBarrier.fromQuery(req.query).queryPrepared(store));
