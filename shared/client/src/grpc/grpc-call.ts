import { fileURLToPath } from 'node:url';
import { Client, credentials, Metadata, status as Code, type ServiceError } from '@grpc/grpc-js';
import { loadSync, type MethodDefinition } from '@grpc/proto-loader';
import { DtmFailure, DtmOngoing, DtmTransportError } from '../errors';

/** DTM's `dtmgimp.proto` (kept in the repo at shared/proto; the TM serves the same file). */
export const DTMGIMP_PROTO = fileURLToPath(new URL('../../../proto/dtmgimp.proto', import.meta.url));

type Methods = Record<string, MethodDefinition<unknown, unknown>>;
let dtmMethods: Methods | undefined;

/** The methods of `dtmgimp.Dtm`, loaded once: DTM's field names (`keepCase`), int64 as numbers, absent fields as zero values. */
export const dtmgimpMethods = (): Methods => {
  dtmMethods ??= loadSync(DTMGIMP_PROTO, {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    arrays: true,
    objects: true,
  })['dtmgimp.Dtm'] as unknown as Methods;
  return dtmMethods;
};

const channels = new Map<string, Client>();

/** One channel per target (`host:port`), reused by every call, as DTM's clients keep them. */
export const grpcChannel = (target: string): Client => {
  let c = channels.get(target);
  if (!c) {
    c = new Client(target, credentials.createInsecure());
    channels.set(target, c);
  }
  return c;
};

/** Closes every channel this client opened (to the TM and to RMs); later calls open new ones. */
export const closeGrpcChannels = (): void => {
  for (const c of channels.values()) c.close();
  channels.clear();
};

const shorten = (text: string): string => (text.length > 300 ? `${text.slice(0, 300)}…` : text);

/**
 * A gRPC status as this SDK's errors, as DTM's `GrpcError2DtmError` reads it: ABORTED is FAILURE (unless its
 * message is exactly `ONGOING`, the pre-1.10 form), FAILED_PRECONDITION is ONGOING, anything else a transport error
 * (the outcome is unknown).
 */
export const errorOfGrpcStatus = (err: ServiceError, what: string): Error => {
  const details = { grpcCode: err.code, body: err.details, cause: err };
  const text = `${what}: ${Code[err.code] ?? err.code} ${shorten(err.details)}`;
  if (err.code === Code.ABORTED && err.details === 'ONGOING') return new DtmOngoing(text, details);
  if (err.code === Code.ABORTED) return new DtmFailure(text, details);
  if (err.code === Code.FAILED_PRECONDITION) return new DtmOngoing(text, details);
  return new DtmTransportError(text, details);
};

/** One unary call on `target`'s channel, with a deadline; rejects with {@link errorOfGrpcStatus}'s errors. */
export const grpcUnary = <Req, Res>(call: {
  target: string;
  path: string;
  serialize: (r: Req) => Buffer;
  deserialize: (b: Buffer) => Res;
  request: Req;
  metadata: Metadata;
  timeoutMs: number;
  what: string;
}): Promise<Res> =>
  new Promise<Res>((resolve, reject) => {
    grpcChannel(call.target).makeUnaryRequest(
      call.path,
      call.serialize,
      call.deserialize,
      call.request,
      call.metadata,
      { deadline: Date.now() + call.timeoutMs },
      (err, res) => (err ? reject(errorOfGrpcStatus(err, call.what)) : resolve(res as Res)),
    );
  });

/** Metadata of the given string pairs. */
export const metadataOf = (pairs: Readonly<Record<string, string>>): Metadata => {
  const md = new Metadata();
  for (const [k, v] of Object.entries(pairs)) md.add(k, v);
  return md;
};

/** Raw bytes in, raw bytes out: branch calls carry the stored payload as it is (DTM's `dtm_raw` codec). */
const rawSerialize = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const rawDeserialize = (b: Buffer): Uint8Array => b;

/**
 * Splits DTM's gRPC branch URL `host:port/package.Service/Method` (or `dns:///host:port/…`) into the channel
 * target and the method path.
 */
export const parseGrpcUrl = (url: string): { target: string; path: string } => {
  const scheme = url.startsWith('dns:///') ? 'dns:///' : '';
  const rest = url.slice(scheme.length);
  const slash = rest.indexOf('/');
  if (slash <= 0 || !/^\/[^/]+\/[^/]+$/.test(rest.slice(slash))) {
    throw new TypeError(`not a gRPC branch URL (host:port/package.Service/Method): ${url}`);
  }
  return { target: `${scheme}${rest.slice(0, slash)}`, path: rest.slice(slash) };
};

/**
 * Calls a branch the way a DTM AP does over gRPC (a TCC try, an XA action, a msg check-back asked by the AP): the
 * payload bytes as the message, metadata `dtm-gid`, `dtm-trans_type`, `dtm-branch_id`, `dtm-op`, `dtm-dtm` (the
 * TM's gRPC target, for nested transactions), `dtm-phase2_url` for xa, plus the branch headers. Resolves with the
 * reply's bytes.
 */
export const invokeGrpcBranch = (req: {
  url: string;
  dtm: string;
  gid: string;
  transType: string;
  branchId: string;
  op: string;
  payload: Uint8Array;
  headers?: Readonly<Record<string, string>>;
  timeoutMs: number;
}): Promise<Uint8Array> => {
  const { target, path } = parseGrpcUrl(req.url);
  const md = metadataOf({
    ...req.headers,
    'dtm-gid': req.gid,
    'dtm-trans_type': req.transType,
    'dtm-branch_id': req.branchId,
    'dtm-op': req.op,
    'dtm-dtm': req.dtm,
    ...(req.transType === 'xa' ? { 'dtm-phase2_url': req.url } : {}),
  });
  return grpcUnary({
    target,
    path,
    serialize: rawSerialize,
    deserialize: rawDeserialize,
    request: req.payload,
    metadata: md,
    timeoutMs: req.timeoutMs,
    what: `branch ${req.branchId} ${req.op} (${req.url})`,
  });
};
