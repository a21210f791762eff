import {
  Server,
  ServerCredentials,
  status as Code,
  type Metadata,
  type sendUnaryData,
  type ServerUnaryCall,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { tracer, type DtmMetrics, type Logger } from '@dtm-ts/telemetry';
import type { Scope } from '../edge/auth';
import type { DtmService } from '../http/dtm-service';
import {
  dtmServiceDefinition,
  type DtmBranchRequest,
  type DtmProgressesReply,
  type DtmRequest,
  type DtmTopicRequest,
} from './dtmgimp';
import { branchBody, globalBody, progressesReply } from './to-body';
import { grpcCodeOf, grpcError } from './status';

/** The verdict of an {@link Authorize} check: allowed, or refused with 401 (who are you) or 403 (not you). */
export type AuthVerdict =
  { readonly ok: true } | { readonly ok: false; readonly status: 401 | 403; readonly message: string };

/**
 * The API's access check, shared with HTTP: the `authorization` value (`Bearer <token>`), the peer's
 * address, and the scope the call needs.
 */
export type Authorize = (authorization: string | undefined, peer: string, scope: Scope) => AuthVerdict;

export interface GrpcApiDeps {
  readonly svc: DtmService;
  readonly logger: Logger;
  readonly metrics?: DtmMetrics;
  /** Absent: every call is allowed (as DTM, which has no auth). */
  readonly authorize?: Authorize;
  /** Largest accepted request message (MAX_BODY_BYTES); grpc-js refuses bigger ones with RESOURCE_EXHAUSTED. */
  readonly maxMessageBytes: number;
}

export interface RunningGrpcApi {
  /** The bound port (useful when 0 asked for any free port). */
  readonly port: number;
  /** `host:port` for clients on this machine. */
  readonly target: string;
  close(): Promise<void>;
}

type Empty = Record<string, never>;
const EMPTY: Empty = {};

/** Error thrown by the access check before the handler runs. */
class Refused extends Error {
  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(message);
  }
}

const first = (md: Metadata, key: string): string | undefined => {
  const v = md.get(key)[0];
  return typeof v === 'string' ? v : undefined;
};

/** The peer's address without its port: grpc-js gives `<remoteAddress>:<remotePort>` (`::1:5000` for IPv6). */
export const peerAddress = (peer: string): string => {
  const colon = peer.lastIndexOf(':');
  return colon > 0 && /^\d+$/.test(peer.slice(colon + 1)) ? peer.slice(0, colon) : peer;
};

/** The W3C trace context a client put in the metadata, as a carrier for the propagator. */
const traceCarrier = (md: Metadata): Record<string, string> => {
  const carrier: Record<string, string> = {};
  for (const key of ['traceparent', 'tracestate']) {
    const v = first(md, key);
    if (v !== undefined) carrier[key] = v;
  }
  return carrier;
};

/**
 * One unary method: the access check, a server span continuing the caller's `traceparent`, DTM's
 * request metrics with `type=grpc` (api = the method's name in lower case, as DTM labels it), and
 * the error mapping. The handler runs inside the span's context, so appends and passes join it.
 */
const unary =
  <Req, Res>(
    deps: GrpcApiDeps,
    method: string,
    scope: Scope,
    handle: (req: Req, traceparent: string | undefined) => Promise<Res> | Res,
  ) =>
  (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    const api = method.toLowerCase();
    const parent = propagation.extract(ROOT_CONTEXT, traceCarrier(call.metadata));
    const span = tracer().startSpan(
      `dtmgimp.Dtm/${method}`,
      {
        kind: SpanKind.SERVER,
        attributes: { 'rpc.system': 'grpc', 'rpc.service': 'dtmgimp.Dtm', 'rpc.method': method },
      },
      parent,
    );
    const t0 = performance.now();
    const finish = (code: Code): void => {
      span.setAttribute('rpc.grpc.status_code', code);
      if (code === Code.INTERNAL || code === Code.UNKNOWN) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
      deps.metrics?.serverProcess.add(1, { type: 'grpc', api, status: code === Code.OK ? 'ok' : 'fail' });
      deps.metrics?.serverDuration.record(performance.now() - t0, { type: 'grpc', api });
    };
    const run = async (): Promise<Res> => {
      if (deps.authorize) {
        const verdict = deps.authorize(first(call.metadata, 'authorization'), peerAddress(call.getPeer()), scope);
        if (!verdict.ok) throw new Refused(grpcCodeOf(verdict.status), verdict.message);
      }
      return handle(call.request, first(call.metadata, 'traceparent'));
    };
    context.with(trace.setSpan(parent, span), run).then(
      (res) => {
        finish(Code.OK);
        callback(null, res);
      },
      (err: unknown) => {
        const e = err instanceof Refused ? { code: err.code, details: err.message, internal: false } : grpcError(err);
        if (e.internal) deps.logger.error({ err, method }, 'grpc request failed');
        finish(e.code);
        callback({ code: e.code, details: e.details });
      },
    );
  };

/**
 * The handlers of `dtmgimp.Dtm`, each mapping its message to the body `DtmService` takes. Scopes as
 * the HTTP routes: the AP's calls need `client`, the topic calls (an operator's) `admin`.
 */
export const dtmGrpcHandlers = (deps: GrpcApiDeps): UntypedServiceImplementation => {
  const { svc } = deps;
  const empty = async (p: Promise<unknown>): Promise<Empty> => {
    await p;
    return EMPTY;
  };
  return {
    NewGid: unary(deps, 'NewGid', 'client', () => ({ Gid: svc.newGid().gid as string })),
    Submit: unary(deps, 'Submit', 'client', (r: DtmRequest, tp) => empty(svc.submit(globalBody(r), tp))),
    Prepare: unary(deps, 'Prepare', 'client', (r: DtmRequest, tp) => empty(svc.prepare(globalBody(r), tp))),
    Abort: unary(deps, 'Abort', 'client', (r: DtmRequest) => empty(svc.abort(globalBody(r)))),
    RegisterBranch: unary(deps, 'RegisterBranch', 'client', (r: DtmBranchRequest) =>
      empty(svc.registerBranch(branchBody(r))),
    ),
    PrepareWorkflow: unary(deps, 'PrepareWorkflow', 'client', async (r: DtmRequest, tp): Promise<DtmProgressesReply> =>
      progressesReply(await svc.prepareWorkflow(globalBody(r), tp)),
    ),
    Subscribe: unary(deps, 'Subscribe', 'admin', (r: DtmTopicRequest) =>
      empty(svc.subscribe(r.Topic, r.URL, r.Remark)),
    ),
    Unsubscribe: unary(deps, 'Unsubscribe', 'admin', (r: DtmTopicRequest) => empty(svc.unsubscribe(r.Topic, r.URL))),
    DeleteTopic: unary(deps, 'DeleteTopic', 'admin', (r: DtmTopicRequest) => empty(svc.deleteTopic(r.Topic))),
  };
};

/** `host:port` for grpc-js, bracketing an IPv6 address. */
const bindAddress = (host: string, port: number): string => `${host.includes(':') ? `[${host}]` : host}:${port}`;

/** Serves `dtmgimp.Dtm` on `host:port` (port 0: any free port), plaintext HTTP/2 as DTM does. */
export const startGrpcApi = async (deps: GrpcApiDeps, host: string, port: number): Promise<RunningGrpcApi> => {
  const server = new Server({
    'grpc.max_receive_message_length': deps.maxMessageBytes,
    'grpc.keepalive_permit_without_calls': 1,
  });
  server.addService(dtmServiceDefinition(), dtmGrpcHandlers(deps));
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(bindAddress(host, port), ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    );
  });
  const local = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return {
    port: bound,
    target: bindAddress(local, bound),
    close: () =>
      new Promise<void>((resolve) => {
        // Let calls in flight finish for a moment, then cut what is left.
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
};
