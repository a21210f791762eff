import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import type { NextFunction, Request, Response } from 'express';
import { ConfigError, parseApiTokens, type ApiToken, type Config, type Scope, type TrustedNet } from '@dtm-ts/config';
import type { Logger } from '@dtm-ts/telemetry';

export type { Scope };

/**
 * Who may call the API. Off (everything allowed, as DTM) until tokens or trusted networks are
 * configured; then every request needs a bearer token with the scope of its endpoint, or comes
 * from a trusted network. HTTP and gRPC (metadata `authorization`) ask the same `Authorizer`.
 */
export type AuthDecision =
  | { readonly ok: true; readonly via: 'open' | 'token' | 'trusted-net' }
  | {
      readonly ok: false;
      readonly status: 401 | 403;
      readonly message: string;
      /** The `WWW-Authenticate` header value to answer with (RFC 6750). */
      readonly challenge: string;
    };

const REALM = 'Bearer realm="dtm-ts"';
const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
const grants = (have: Scope, need: Scope): boolean => have === 'admin' || need === 'client';

/** `::ffff:10.1.2.3` → `10.1.2.3`: an IPv4 peer on a dual-stack socket is matched as IPv4. */
const unmapped = (address: string): string => {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return m ? m[1]! : address;
};

export class Authorizer {
  private readonly tokens: readonly { hash: Buffer; scope: Scope }[];
  private readonly nets: { readonly list: BlockList; readonly scope: Scope }[];

  constructor(cfg: { readonly tokens?: readonly ApiToken[]; readonly trustedNets?: readonly TrustedNet[] }) {
    // Only digests are kept: equal lengths for timingSafeEqual, and no token text in memory dumps of this object.
    this.tokens = (cfg.tokens ?? []).map((t) => ({ hash: sha256(t.token), scope: t.scope }));
    this.nets = (['client', 'admin'] as const).map((scope) => {
      const list = new BlockList();
      for (const n of cfg.trustedNets ?? []) if (n.scope === scope) list.addSubnet(n.address, n.prefix, n.family);
      return { list, scope };
    });
    this.enabled = this.tokens.length > 0 || (cfg.trustedNets ?? []).length > 0;
  }

  /** True once tokens or trusted networks are configured. */
  readonly enabled: boolean;

  /** The scope a peer address gets without a token, if it is in a trusted network. */
  private netScope(peer: string | undefined): Scope | null {
    if (!peer) return null;
    const address = unmapped(peer);
    const v = isIP(address);
    if (v === 0) return null;
    const family = v === 4 ? 'ipv4' : 'ipv6';
    let best: Scope | null = null;
    for (const n of this.nets)
      if (n.list.check(address, family)) best = n.scope === 'admin' ? 'admin' : (best ?? n.scope);
    return best;
  }

  /** The scope of a bearer token: compared as SHA-256 digests in constant time, against every token. */
  private tokenScope(token: string): Scope | null {
    const presented = sha256(token);
    let scope: Scope | null = null;
    for (const t of this.tokens) {
      if (timingSafeEqual(presented, t.hash) && (scope === null || t.scope === 'admin')) scope = t.scope;
    }
    return scope;
  }

  /**
   * May a caller with this `Authorization` header value (`Bearer <token>`) from this peer address
   * do what needs `scope`? 401 when no valid credential, 403 when the token's scope is too small.
   */
  check(authorization: string | undefined, peer: string | undefined, scope: Scope): AuthDecision {
    if (!this.enabled) return { ok: true, via: 'open' };
    const header = authorization?.trim() ?? '';
    if (header === '') {
      const net = this.netScope(peer);
      if (net && grants(net, scope)) return { ok: true, via: 'trusted-net' };
      return {
        ok: false,
        status: 401,
        message: net
          ? `this endpoint needs a bearer token with scope ${scope}`
          : 'authentication required: send Authorization: Bearer <token>',
        challenge: `${REALM}, scope="${scope}"`,
      };
    }
    const m = /^Bearer +(\S+)$/i.exec(header);
    const token = m ? this.tokenScope(m[1]!) : null;
    if (token === null) {
      return {
        ok: false,
        status: 401,
        message: m ? 'the bearer token is not valid' : 'the Authorization header must be Bearer <token>',
        challenge: `${REALM}, error="invalid_token"`,
      };
    }
    if (!grants(token, scope)) {
      return {
        ok: false,
        status: 403,
        message: `this endpoint needs scope ${scope}; the token has scope ${token}`,
        challenge: `${REALM}, error="insufficient_scope", scope="${scope}"`,
      };
    }
    return { ok: true, via: 'token' };
  }
}

/**
 * Every endpoint of the API by name (the last path segment, lower-cased, as DTM labels its metrics)
 * and the scope it needs: `client` for the AP endpoints DTM's SDKs call, `admin` for the rest, `null`
 * for the open ones (probes, and the Prometheus scrape: counts and durations, no ids, no payloads).
 */
export const ENDPOINT_SCOPES: Readonly<Record<string, Scope | null>> = {
  version: 'client',
  newgid: 'client',
  prepare: 'client',
  submit: 'client',
  abort: 'client',
  registerbranch: 'client',
  registertccbranch: 'client',
  registerxabranch: 'client',
  prepareworkflow: 'client',
  query: 'client',
  'json-rpc': 'client',
  all: 'admin',
  forcestop: 'admin',
  resetnextcrontime: 'admin',
  resetcrontime: 'admin',
  subscribe: 'admin',
  unsubscribe: 'admin',
  topic: 'admin',
  events: 'admin',
  scankv: 'admin',
  querykv: 'admin',
  console: 'admin',
  ping: null,
  metrics: null,
};

/** `/api/dtmsvr/<name>` or `/api/<name>`, exactly (case-insensitive, trailing slash allowed): the name. */
const endpointName = (path: string): string | undefined => {
  const p = path.toLowerCase().replace(/\/+$/, '');
  return (/^\/api\/dtmsvr\/([^/]+)$/.exec(p) ?? /^\/api\/(json-rpc|ping|metrics)$/.exec(p))?.[1];
};

/**
 * The console's page shells and scripts (`/`, `/unfinished`, `/alerts`, `/topics`, `/tx/<gid>`, `/console/…`):
 * they hold no data (the pages read it from `/api/console/*` and `/api/dtmsvr/*`, which need admin, sending
 * the token the operator typed), so a browser can load them before it has a token to send.
 */
const CONSOLE_SHELL = /^\/(?:unfinished|alerts|topics|tx\/[^/]+|console\/[^/]+(?:\/[^/]+)?)?\/?$/i;

/**
 * The scope an HTTP request needs, or `null` for the open endpoints. Everything not listed as open
 * or client (admin endpoints, the console, unknown paths) needs `admin`, so a new route is closed
 * until it is listed. Paths are matched as express routes them: case-insensitively, with or
 * without a trailing slash.
 */
export const scopeOfPath = (path: string): Scope | null => {
  if (CONSOLE_SHELL.test(path)) return null;
  const name = endpointName(path);
  const scope = name !== undefined && Object.hasOwn(ENDPOINT_SCOPES, name) ? ENDPOINT_SCOPES[name] : 'admin';
  return scope === undefined ? 'admin' : scope;
};

/** The scope a method of DTM's gRPC service (`dtmgimp.Dtm`) needs: the AP's calls client, topics admin. */
export const scopeOfGrpcMethod = (method: string): Scope =>
  ['NewGid', 'Submit', 'Prepare', 'Abort', 'RegisterBranch', 'PrepareWorkflow'].includes(method) ? 'client' : 'admin';

/** gRPC peers read `ipv4:10.1.2.3:5000` or `ipv6:[::1]:5000`: the address part. */
export const addressOfGrpcPeer = (peer: string): string => {
  const m = /^ipv[46]:\[?([^\]]+?)\]?:\d+$/.exec(peer);
  return m ? m[1]! : peer;
};

/**
 * Express middleware: answers 401/403 `{message}` (with `WWW-Authenticate`) before the body is
 * read, so a refused request costs little and writes nothing. The peer is the socket's address:
 * behind a proxy, that is the proxy (forwarded headers are not trusted).
 */
export const authMiddleware =
  (auth: Authorizer, onRefused?: (info: { path: string; peer: string; status: number }) => void) =>
  (req: Request, res: Response, next: NextFunction): void => {
    const scope = scopeOfPath(req.path);
    if (scope === null) return next();
    const peer = req.socket.remoteAddress ?? '';
    const d = auth.check(req.headers.authorization, peer, scope);
    if (d.ok) return next();
    onRefused?.({ path: req.path, peer, status: d.status });
    // The body is not read: close the connection rather than drain an upload nobody will look at.
    res.setHeader('connection', 'close');
    res.setHeader('www-authenticate', d.challenge);
    res.status(d.status).json({ message: d.message });
  };

/** True when `host` only accepts connections from this machine. */
export const isLoopbackHost = (host: string): boolean =>
  host === 'localhost' ||
  host === '::1' ||
  /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) ||
  host === '::ffff:127.0.0.1';

/** The API's authorizer from API_TOKENS, API_TOKENS_FILE and API_TRUSTED_NETS; warns when an exposed API has none. */
export const authorizerOf = (config: Config, logger: Logger): Authorizer => {
  let fromFile: ReturnType<typeof parseApiTokens> = [];
  if (config.apiTokensFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(config.apiTokensFile, 'utf8');
    } catch (err) {
      throw new ConfigError(`API_TOKENS_FILE=${config.apiTokensFile}: ${(err as Error).message}`);
    }
    try {
      fromFile = parseApiTokens(text);
    } catch (err) {
      throw new ConfigError(`API_TOKENS_FILE=${config.apiTokensFile}: ${(err as Error).message}`);
    }
  }
  const tokens = [...(config.apiTokens ?? []), ...fromFile];
  const auth = new Authorizer({ tokens, trustedNets: config.apiTrustedNets ?? [] });
  if (auth.enabled) {
    logger.info(
      { tokens: tokens.length, trustedNets: (config.apiTrustedNets ?? []).length },
      'API authentication on: bearer tokens with scopes, or a trusted network',
    );
  } else if (!isLoopbackHost(config.host)) {
    logger.warn(
      { host: config.host, port: config.port },
      `the API listens on ${config.host} WITHOUT authentication: anyone who reaches port ${config.port} can submit, ` +
        'forceStop, reset retries and delete topics. Set API_TOKENS (or API_TOKENS_FILE) and API_TRUSTED_NETS, ' +
        'or HOST=127.0.0.1 (README, "Security")',
    );
  }
  return auth;
};
