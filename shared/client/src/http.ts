import { DtmFailure, DtmOngoing, DtmTransportError } from './errors';

/** Default bound of one HTTP call this client makes (to the TM, or an AP-made branch call), in ms. */
export const DEFAULT_HTTP_TIMEOUT_MS = 30_000;

/** An HTTP answer as text. */
export interface BranchResponse {
  readonly status: number;
  readonly text: string;
  /** The body parsed as JSON (throws a SyntaxError when it is not JSON). */
  json<T = unknown>(): T;
}

const answer = (status: number, text: string): BranchResponse => ({
  status,
  text,
  json: <T>() => JSON.parse(text) as T,
});

const shorten = (text: string): string => (text.length > 300 ? `${text.slice(0, 300)}…` : text);

/**
 * Turns an answer into an error the way DTM's clients read every reply (reference §3.2, `HTTPResp2DtmError`), in
 * this order: 425 or a body containing `ONGOING` → {@link DtmOngoing}; 409 or a body containing `FAILURE` →
 * {@link DtmFailure}; any status but 200 → {@link DtmTransportError}; else nothing (success).
 */
export const errorOfAnswer = (status: number, text: string, what: string): Error | undefined => {
  const details = { status, body: text };
  if (status === 425 || text.includes('ONGOING')) return new DtmOngoing(`${what}: ONGOING (${shorten(text)})`, details);
  if (status === 409 || text.includes('FAILURE')) return new DtmFailure(`${what}: FAILURE (${shorten(text)})`, details);
  if (status !== 200) return new DtmTransportError(`${what}: HTTP ${status} ${shorten(text)}`, details);
  return undefined;
};

/** One HTTP request; resolves with any status, rejects with {@link DtmTransportError} when there is no answer in time. */
export const httpRequest = async (
  method: 'GET' | 'POST',
  url: string,
  opts: { body?: string; headers?: Readonly<Record<string, string>>; timeoutMs: number; what: string },
): Promise<BranchResponse> => {
  try {
    const res = await fetch(url, {
      method,
      headers: { 'Content-Type': 'application/json', ...opts.headers },
      body: method === 'POST' ? (opts.body ?? '') : undefined,
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
    return answer(res.status, await res.text());
  } catch (err) {
    const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
    const why = timedOut ? `no answer within ${opts.timeoutMs} ms` : err instanceof Error ? err.message : String(err);
    throw new DtmTransportError(`${opts.what}: ${why}`, { cause: err });
  }
};

/** `Authorization` header values for calls to a TM, by the TM's base URL (no trailing slash). */
const tmAuthorization = new Map<string, string>();

/**
 * Sends `authorization` (e.g. `Bearer <token>`) with every call this process makes to the TM at `dtm` (the same base
 * URL the transactions are given), for a TM with `API_TOKENS` set; `undefined` stops sending it. Branch calls the
 * AP makes itself (TCC tries, XA actions) never carry it: the token is the TM's, not the RMs'.
 */
export const setTmAuthorization = (dtm: string, authorization: string | undefined): void => {
  if (authorization === undefined) tmAuthorization.delete(trimSlash(dtm));
  else tmAuthorization.set(trimSlash(dtm), authorization);
};

const tmHeaders = (dtm: string): Record<string, string> | undefined => {
  const authorization = tmAuthorization.get(trimSlash(dtm));
  return authorization === undefined ? undefined : { authorization };
};

/**
 * POSTs `body` to `<dtm>/<operation>` and classifies the answer as DTM's clients do (`TransCallDtmExt`): success is
 * a 200 whose body does not contain `FAILURE`; otherwise a typed error is thrown.
 */
export const callTm = async (
  dtm: string,
  operation: string,
  body: unknown,
  timeoutMs: number,
): Promise<Record<string, unknown>> => {
  const what = `TM ${operation}`;
  const res = await httpRequest('POST', `${trimSlash(dtm)}/${operation}`, {
    body: JSON.stringify(body),
    headers: tmHeaders(dtm),
    timeoutMs,
    what,
  });
  const err = errorOfAnswer(res.status, res.text, what);
  if (err) throw err;
  return parseObject(res.text);
};

/** GETs `<dtm>/<pathAndQuery>`; only the status counts (a query result may quote FAILURE in a rollback reason). */
export const getTm = async (dtm: string, pathAndQuery: string, timeoutMs: number): Promise<Record<string, unknown>> => {
  const what = `TM GET ${pathAndQuery.split('?')[0]}`;
  const res = await httpRequest('GET', `${trimSlash(dtm)}/${pathAndQuery}`, {
    headers: tmHeaders(dtm),
    timeoutMs,
    what,
  });
  if (res.status !== 200) {
    throw new DtmTransportError(`${what}: HTTP ${res.status} ${shorten(res.text)}`, {
      status: res.status,
      body: res.text,
    });
  }
  return parseObject(res.text);
};

/**
 * Calls a branch the way an AP does (a TCC try, an XA action, a check-back asked by the AP itself): query
 * `dtm, gid, branch_id, trans_type, op` (plus `phase2_url` for xa), JSON body, `branch_headers`. Resolves on
 * success; rejects with a typed error per {@link errorOfAnswer}.
 */
export const requestBranch = async (req: {
  method: 'GET' | 'POST';
  url: string;
  dtm: string;
  gid: string;
  transType: string;
  branchId: string;
  op: string;
  body?: string;
  headers?: Readonly<Record<string, string>>;
  timeoutMs: number;
}): Promise<BranchResponse> => {
  const query = new URLSearchParams({
    dtm: req.dtm,
    gid: req.gid,
    branch_id: req.branchId,
    trans_type: req.transType,
    op: req.op,
  });
  if (req.transType === 'xa') query.set('phase2_url', req.url);
  const what = `branch ${req.branchId} ${req.op} (${req.url})`;
  const res = await httpRequest(req.method, `${req.url}${req.url.includes('?') ? '&' : '?'}${query.toString()}`, {
    body: req.body,
    headers: req.headers,
    timeoutMs: req.timeoutMs,
    what,
  });
  const err = errorOfAnswer(res.status, res.text, what);
  if (err) throw err;
  return res;
};

const trimSlash = (url: string): string => url.replace(/\/+$/, '');

const parseObject = (text: string): Record<string, unknown> => {
  if (text === '') return {};
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
};
