import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { BranchBarrier, type RedisBarrierLike, type SqlBarrierStore } from './barrier';
import { BranchSignatureVerifier, SIGNATURE_HEADER, type VerifierOptions } from './branch-signature';
import { DtmBadRequest, DtmFailure, DtmOngoing } from './errors';
import type { BranchInfo } from './branch-info';
import { queryValue, type QueryLike } from './query-params';

export type { BranchInfo } from './branch-info';

/** DTM's result words (reference §1.1): the `dtm_result` of an answer. */
export const DtmResult = { SUCCESS: 'SUCCESS', FAILURE: 'FAILURE', ONGOING: 'ONGOING' } as const;

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

/** A request whose raw body was kept by {@link keepRawBody}. */
type WithRawBody = IncomingMessage & { rawBody?: Buffer };

/**
 * The `verify` hook of `express.json()` that keeps the raw body for {@link verifyBranchSignature}, for an RM that
 * parses bodies before the verifier: `app.use(express.json({ verify: keepRawBody }))`.
 */
export const keepRawBody = (req: IncomingMessage, _res: unknown, buf: Buffer): void => {
  (req as WithRawBody).rawBody = buf;
};

const readBody = (req: Request, limit: number): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.destroy();
        reject(Object.assign(new Error(`request body over ${limit} bytes`), { status: 413 }));
      } else chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks, size)));
    req.once('error', reject);
  });

/** Options of {@link verifyBranchSignature}. */
export interface VerifyBranchSignatureOptions extends VerifierOptions {
  /** Largest body read when the verifier reads it itself (default 1 MiB). */
  readonly maxBodyBytes?: number;
}

/**
 * Middleware that lets through only calls the TM signed (README, "Signed branch calls"): the `dtm-signature`
 * header must be the HMAC-SHA256, under the TM's BRANCH_SIGNING_KEY, of this method, path and query, body and
 * timestamp; the timestamp within the window (5 minutes by default); and the signature not seen before (a
 * replay). Anything else is answered 401 `{"message": why}`, which the TM, were it the caller, would retry.
 *
 * It needs the body's bytes as sent: mount it before any body parser (it then reads the body itself and sets
 * `req.body`, parsed when it is JSON), or after `express.json({ verify: keepRawBody })`.
 *
 * ```ts
 * app.use(verifyBranchSignature({ key: process.env.BRANCH_SIGNING_KEY! }));
 * app.post('/TransIn', rmHandler(async (req) => credit(req.body)));
 * ```
 */
export const verifyBranchSignature = (opts: VerifyBranchSignatureOptions): RequestHandler => {
  const verifier = new BranchSignatureVerifier(opts);
  const limit = opts.maxBodyBytes ?? 1024 * 1024;
  return (req: Request, res: Response, next: NextFunction): void => {
    const kept = (req as unknown as WithRawBody).rawBody;
    if (kept === undefined && req.readableEnded) {
      res.status(500).json({
        message:
          'verifyBranchSignature needs the raw body: mount it before express.json(), or give express.json() { verify: keepRawBody }',
      });
      return;
    }
    const raw = kept ? Promise.resolve(kept) : readBody(req, limit);
    raw.then(
      (body) => {
        const verdict = verifier.verify(req.get(SIGNATURE_HEADER), { method: req.method, path: req.originalUrl, body });
        if (!verdict.ok) {
          res.status(401).json({ message: `unsigned or badly signed branch call: ${verdict.reason}` });
          return;
        }
        if (kept === undefined) req.body = parseBody(body, req.get('content-type'));
        next();
      },
      (err: unknown) => {
        if (res.headersSent || res.destroyed) return;
        const status = (err as { status?: number }).status ?? 400;
        res.status(status).json({ message: err instanceof Error ? err.message : String(err) });
      },
    );
  };
};

/** The body as `express.json()` would give it: parsed JSON, else its text (undefined when empty). */
const parseBody = (body: Buffer, contentType: string | undefined): unknown => {
  if (body.length === 0) return undefined;
  const text = body.toString('utf8');
  if (!contentType?.toLowerCase().includes('json')) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
};
