import { Agent } from 'undici';
import { ByteLru } from '../byte-lru';
import type { Dispatcher } from 'undici';
import { SIGNATURE_HEADER, signBranchCall } from '@dtm-ts/client/branch-signature';
import { classifyHttp } from '@dtm-ts/domain';
import type { BranchOutcome } from '@dtm-ts/domain';
import type { BranchRequest, BranchTransport } from '@dtm-ts/ports';
import { describeError } from '../describe-error';
import { payloadBytes } from '../grpc-branch/payload';
import { guardedConnector } from '../outbound/guarded-connector';
import type { OutboundPolicy } from '../outbound/outbound-policy';

/** Options of {@link HttpBranchTransport}. */
export interface HttpBranchTransportOptions {
  /** Sockets kept per RM origin (default 128). More than this many concurrent calls queue in undici. */
  readonly connectionsPerOrigin?: number;
  /** Bytes of an RM's answer read for classification (default 64 KiB); the rest is discarded. */
  readonly maxBodyBytes?: number;
  /**
   * The outbound policy, checked on every connection against the addresses it resolves to (README,
   * "Outbound calls"). A refused connection is an `error` outcome naming the reason.
   */
  readonly policy?: OutboundPolicy;
  /** BRANCH_SIGNING_KEY: when set, every call carries a `dtm-signature` header (README, "Signed branch calls"). */
  readonly signingKey?: string | Uint8Array;
  /** The clock of the signatures' timestamps (tests). */
  readonly now?: () => number;
}

const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
/**
 * How far past the cap an answer is still read and thrown away. Draining a little keeps the
 * keep-alive socket usable; reading megabytes just to reuse one socket costs more than a new one.
 */
const DRAIN_BYTES = 256 * 1024;
/** Budget of the parsed-url cache: RMs are few, but the urls are the clients' choice. */
const URL_CACHE_BYTES = 4 * 1024 * 1024;

/** Headers used when a branch has no branch_headers: shared because undici never mutates them. */
const JSON_HEADERS: Readonly<Record<string, string>> = Object.freeze({ 'Content-Type': 'application/json' });

/** An RM's answer (status and the start of its body), or why there was none. */
export type HttpAnswer = { readonly status: number; readonly body: string } | { readonly error: string };

/** A branch url split the way undici's Agent wants it, or why it cannot be called. */
type ParsedUrl =
  | { readonly ok: true; readonly origin: string; readonly path: string; readonly sep: '?' | '&' }
  | { readonly ok: false; readonly detail: string };

/** Marks an abort we caused, so it is reported as a timeout rather than as a transport error. */
class CallTimeout extends Error {
  override readonly name = 'CallTimeout';
}

/**
 * Calls RM branch operations over HTTP as DTM's TM does (reference §3.1) and classifies the answer
 * (§3.2). One undici Agent with keep-alive pools serves every origin. Redirects are never followed: a 3xx
 * is an `error` outcome (a redirect could lead anywhere the outbound policy refuses).
 */
export class HttpBranchTransport implements BranchTransport {
  private readonly agent: Agent;
  private readonly maxBodyBytes: number;
  private readonly signingKey: string | Uint8Array | undefined;
  private readonly now: () => number;
  // Branch urls repeat across transactions (one RM, many gids): parse each once, not per call.
  private readonly urls = new ByteLru<string, ParsedUrl>(URL_CACHE_BYTES);

  constructor(opts: HttpBranchTransportOptions = {}) {
    this.maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.signingKey = opts.signingKey;
    this.now = opts.now ?? Date.now;
    this.agent = new Agent({
      keepAliveTimeout: 30_000,
      connections: opts.connectionsPerOrigin ?? 128,
      pipelining: 1,
      ...(opts.policy ? { connect: guardedConnector(opts.policy) } : {}),
    });
  }

  /** Performs one branch call. Never rejects: timeouts and transport failures are `error` outcomes. */
  async call(req: BranchRequest): Promise<BranchOutcome> {
    // DTM treats a branch without url (e.g. a saga step with no compensation) as done.
    if (req.url === '') return { kind: 'success' };
    const target = this.parse(req.url);
    if (!target.ok) return { kind: 'error', detail: target.detail };

    const path =
      `${target.path}${target.sep}gid=${encodeURIComponent(req.gid)}` +
      `&trans_type=${encodeURIComponent(req.transType)}` +
      `&branch_id=${encodeURIComponent(req.branchId)}&op=${encodeURIComponent(req.op)}`;
    // Go's resty sends a nil payload as "null", so DTM posts for xa even without data (§3.1).
    const post = req.data !== '' || req.transType === 'xa';
    const method = post ? 'POST' : 'GET';
    // A gRPC transaction's payload is bytes (stored base64): an http(s) branch gets them as they are, as DTM sends them.
    const body = post ? (req.protocol === 'grpc' ? payloadBytes(req) : req.data) : null;
    const answer = await this.exchange(
      target.origin,
      path,
      method,
      this.headersFor(method, path, body, req),
      body,
      req,
    );
    return 'error' in answer ? { kind: 'error', detail: answer.error } : classifyHttp(answer.status, answer.body);
  }

  /**
   * POSTs `body` to `url` as it is (no query added) with the branch calls' pool, timeout and body cap, and
   * answers the status and body unclassified (JSON-RPC branches classify them their own way).
   */
  async post(url: string, body: string, req: Pick<BranchRequest, 'headers' | 'timeoutMs'>): Promise<HttpAnswer> {
    const target = this.parse(url);
    if (!target.ok) return { error: target.detail };
    const headers = this.headersFor('POST', target.path, body, req);
    return this.exchange(target.origin, target.path, 'POST', headers, body, req);
  }

  /** The request headers: JSON, the branch headers, and the signature when a signing key is set. */
  private headersFor(
    method: 'GET' | 'POST',
    path: string,
    body: string | Uint8Array | null,
    req: Pick<BranchRequest, 'headers'>,
  ): Readonly<Record<string, string>> {
    if (this.signingKey) {
      return signedHeaders(
        req.headers,
        signBranchCall(this.signingKey, { method, path, body: body ?? '' }, this.now()),
      );
    }
    return hasKeys(req.headers) ? { 'Content-Type': 'application/json', ...req.headers } : JSON_HEADERS;
  }

  /**
   * One request through the pool. A bare dispatch handler ({@link Exchange}), not `agent.request`: no response
   * stream, header object, AbortController or async resource per call, which were most of a call's own cost.
   */
  private exchange(
    origin: string,
    path: string,
    method: 'GET' | 'POST',
    headers: Readonly<Record<string, string>>,
    body: string | Uint8Array | null,
    { timeoutMs }: Pick<BranchRequest, 'timeoutMs'>,
  ): Promise<HttpAnswer> {
    return new Promise<HttpAnswer>((resolve) => {
      const exchange = new Exchange(this.maxBodyBytes, timeoutMs, resolve);
      this.agent.dispatch({ origin, path, method, headers, body }, exchange);
    });
  }

  /** Waits for calls in flight, then closes every pooled socket. */
  async close(): Promise<void> {
    await this.agent.close();
  }

  private parse(raw: string): ParsedUrl {
    let parsed = this.urls.get(raw);
    if (parsed) return parsed;
    parsed = parseBranchUrl(raw);
    this.urls.set(raw, parsed);
    return parsed;
  }
}

const hasKeys = (o: Readonly<Record<string, string>>): boolean => {
  for (const _ in o) return true;
  return false;
};

/**
 * The branch headers plus the TM's signature. A `dtm-signature` among the branch headers (in any case) is
 * dropped: the signature is the TM's word, never the client's.
 */
const signedHeaders = (branch: Readonly<Record<string, string>>, signature: string): Record<string, string> => {
  const out: Record<string, string> = { 'Content-Type': 'application/json' };
  for (const name in branch) if (name.toLowerCase() !== SIGNATURE_HEADER) out[name] = branch[name]!;
  out[SIGNATURE_HEADER] = signature;
  return out;
};

const parseBranchUrl = (raw: string): ParsedUrl => {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return { ok: false, detail: `invalid url: ${raw}` };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    return { ok: false, detail: `unsupported protocol ${u.protocol} in ${raw}` };
  }
  // The RM's own query stays as written (already encoded by whoever registered it); ours is
  // appended after it, as resty does. The fragment is never sent.
  const search = u.search;
  return { ok: true, origin: u.origin, path: u.pathname + search, sep: search === '' ? '?' : '&' };
};

/**
 * One call's undici handler: keeps the status, a redirect's location and at most `cap` bytes of the body as UTF-8
 * text, and settles once with the answer or why there was none. One timer bounds connect, headers and body
 * together (undici's own timeouts are per phase). A slightly larger answer is drained so the socket goes back
 * to the pool; a much larger one is aborted, which closes its socket.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private abortCall: ((reason: Error) => void) | null = null;
  private settled = false;
  private status = 0;
  private location = '';
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  private seen = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly cap: number,
    private readonly timeoutMs: number,
    private readonly settle: (answer: HttpAnswer) => void,
  ) {
    this.timer = setTimeout(() => this.timeOut(), timeoutMs);
  }

  onConnect(abort: (reason?: Error) => void): void {
    // Timed out while it waited for a socket: it never starts.
    if (this.settled) abort(new CallTimeout());
    else this.abortCall = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    if (statusCode < 200) return true; // 1xx: the answer is still to come
    this.status = statusCode;
    if (statusCode >= 300 && statusCode < 400) this.location = headerValue(rawHeaders, 'location');
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.seen += chunk.length;
    if (this.kept < this.cap) {
      const take = Math.min(chunk.length, this.cap - this.kept);
      this.chunks.push(take === chunk.length ? chunk : chunk.subarray(0, take));
      this.kept += take;
    }
    if (this.seen > this.cap + DRAIN_BYTES) {
      this.finish(this.answer());
      this.abortCall?.(new Error('answer larger than the cap'));
    }
    return true;
  }

  onComplete(): void {
    this.finish(this.answer());
  }

  onError(err: Error): void {
    this.finish({ error: describeError(err) });
  }

  private timeOut(): void {
    this.finish({ error: `timeout after ${this.timeoutMs} ms` });
    this.abortCall?.(new CallTimeout());
  }

  private answer(): HttpAnswer {
    if (this.status >= 300 && this.status < 400) {
      const to = this.location;
      return { error: `HTTP ${this.status}: redirect${to ? ` to ${to}` : ''} not followed` };
    }
    const { chunks } = this;
    const [first] = chunks;
    const body =
      chunks.length <= 1 ? (first ? first.toString('utf8') : '') : Buffer.concat(chunks, this.kept).toString('utf8');
    return { status: this.status, body };
  }

  private finish(answer: HttpAnswer): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.settle(answer);
  }
}

/** The first value of header `name` (lower case) in undici's raw header list, or ''. */
const headerValue = (raw: Buffer[], name: string): string => {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]!.length === name.length && raw[i]!.toString('latin1').toLowerCase() === name) {
      return raw[i + 1]!.toString('latin1');
    }
  }
  return '';
};
