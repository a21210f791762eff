import type { Metadata } from '@grpc/grpc-js';
import { DtmTransportError } from '../errors';
import { runTwoPhase } from '../global-trans';
import { DEFAULT_HTTP_TIMEOUT_MS } from '../http';
import type { TransOptions } from '../options';
import { dtmgimpMethods, grpcUnary, metadataOf } from './grpc-call';

/** `DtmRequest` of DTM's proto, as sent: every field optional (proto3 zero values). Payloads are bytes. */
export interface DtmGrpcRequest {
  readonly Gid: string;
  readonly TransType: string;
  readonly TransOptions?: {
    readonly WaitResult?: boolean;
    readonly TimeoutToFail?: number;
    readonly RetryInterval?: number;
    readonly BranchHeaders?: Readonly<Record<string, string>>;
    readonly RequestTimeout?: number;
    readonly RetryLimit?: number;
  };
  readonly CustomedData?: string;
  readonly BinPayloads?: readonly Uint8Array[];
  readonly QueryPrepared?: string;
  /** JSON text of the steps: `[{"action":…,"compensate":…}]`. */
  readonly Steps?: string;
  readonly ReqExtra?: Readonly<Record<string, string>>;
  readonly RollbackReason?: string;
}

/** `DtmBranchRequest`: tcc `Data {confirm, cancel}`, xa `Data {url}`, workflow `Data {op, status}`. */
export interface DtmGrpcBranchRequest {
  readonly Gid: string;
  readonly TransType: string;
  readonly BranchID: string;
  readonly Op?: string;
  readonly Data?: Readonly<Record<string, string>>;
  readonly BusiPayload?: Uint8Array;
}

/** `DtmProgressesReply`: a workflow and the progress recorded so far. */
export interface DtmGrpcProgresses {
  readonly Transaction: { Gid: string; Status: string; RollbackReason: string; Result: string };
  readonly Progresses: readonly { Status: string; BinData: Uint8Array; BranchID: string; Op: string }[];
}

export interface DtmGrpcClientOptions {
  /** Bound of each call, ms (default 30 000). */
  readonly timeoutMs?: number;
  /** Sent as metadata `authorization` with every call (`Bearer <token>`), for a TM that requires it. */
  readonly authorization?: string;
}

/**
 * The TM's gRPC API (`dtmgimp.Dtm` on GRPC_PORT, 36790 by default) as DTM's Go client `dtmgrpc` calls it. The
 * transaction classes ({@link SagaGrpc}, {@link MsgGrpc}, {@link tccGrpcGlobalTransaction},
 * {@link xaGrpcGlobalTransaction}) use it; use it directly for the calls they do not make.
 *
 * Errors: ABORTED → {@link DtmFailure} (the TM refused: submit after abort, register on a finished transaction),
 * FAILED_PRECONDITION → {@link DtmOngoing}, anything else (INVALID_ARGUMENT for bad input, NOT_FOUND for an unknown
 * gid, UNAVAILABLE, DEADLINE_EXCEEDED) → {@link DtmTransportError}; each carries `grpcCode`.
 */
export class DtmGrpcClient {
  private readonly timeoutMs: number;

  /** @param target the TM's gRPC address, `host:port` (e.g. `localhost:36790`) */
  constructor(
    readonly target: string,
    private readonly options: DtmGrpcClientOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;
  }

  private metadata(): Metadata {
    return metadataOf(this.options.authorization ? { authorization: this.options.authorization } : {});
  }

  private call<Res>(method: string, request: unknown, timeoutMs = this.timeoutMs): Promise<Res> {
    const m = dtmgimpMethods()[method];
    if (!m) throw new TypeError(`dtmgimp.Dtm has no method ${method}`);
    return grpcUnary({
      target: this.target,
      path: m.path,
      serialize: m.requestSerialize,
      deserialize: m.responseDeserialize as (b: Buffer) => Res,
      request,
      metadata: this.metadata(),
      timeoutMs,
      what: `TM ${method}`,
    });
  }

  /** A fresh gid from the TM. */
  async newGid(): Promise<string> {
    const r = await this.call<{ Gid?: string }>('NewGid', {});
    if (!r.Gid) throw new DtmTransportError(`TM NewGid answered no gid`);
    return r.Gid;
  }

  async prepare(req: DtmGrpcRequest, timeoutMs?: number): Promise<void> {
    await this.call('Prepare', req, timeoutMs);
  }

  async submit(req: DtmGrpcRequest, timeoutMs?: number): Promise<void> {
    await this.call('Submit', req, timeoutMs);
  }

  async abort(req: DtmGrpcRequest, timeoutMs?: number): Promise<void> {
    await this.call('Abort', req, timeoutMs);
  }

  async registerBranch(req: DtmGrpcBranchRequest, timeoutMs?: number): Promise<void> {
    await this.call('RegisterBranch', req, timeoutMs);
  }

  /** Creates a workflow (or finds it) and answers it with its recorded progress. */
  prepareWorkflow(req: DtmGrpcRequest, timeoutMs?: number): Promise<DtmGrpcProgresses> {
    return this.call('PrepareWorkflow', req, timeoutMs);
  }

  async subscribe(topic: string, url: string, remark = ''): Promise<void> {
    await this.call('Subscribe', { Topic: topic, URL: url, Remark: remark });
  }

  async unsubscribe(topic: string, url: string): Promise<void> {
    await this.call('Unsubscribe', { Topic: topic, URL: url });
  }

  async deleteTopic(topic: string): Promise<void> {
    await this.call('DeleteTopic', { Topic: topic });
  }
}

/** A {@link DtmGrpcClient} given as itself or as its target. */
export const dtmGrpcClient = (dtm: string | DtmGrpcClient): DtmGrpcClient =>
  typeof dtm === 'string' ? new DtmGrpcClient(dtm) : dtm;

/** The options as `DtmTransOptions`, leaving out what is unset. */
export const grpcTransOptions = (o: TransOptions): NonNullable<DtmGrpcRequest['TransOptions']> => ({
  WaitResult: o.waitResult ?? false,
  TimeoutToFail: o.timeoutToFail ?? 0,
  RetryInterval: o.retryInterval ?? 0,
  RequestTimeout: o.requestTimeout ?? 0,
  RetryLimit: o.retryLimit ?? 0,
  BranchHeaders: { ...o.branchHeaders },
});

/** A payload as bytes: Uint8Array as it is, a string as its UTF-8. */
export type GrpcPayload = Uint8Array | string;
export const payloadBytes = (p: GrpcPayload | undefined): Uint8Array =>
  p === undefined ? new Uint8Array() : typeof p === 'string' ? Buffer.from(p, 'utf8') : p;

/** Prepare, `fn`, then submit, or abort with the error as `RollbackReason` (TCC and XA over gRPC). */
export const runGrpcTwoPhase = <X extends { client: DtmGrpcClient; toRequest(reason?: string): DtmGrpcRequest }, T>(
  x: X,
  timeoutMs: number,
  fn: (x: X) => Promise<T>,
): Promise<T> =>
  runTwoPhase(
    {
      prepare: () => x.client.prepare(x.toRequest(), timeoutMs),
      submit: () => x.client.submit(x.toRequest(), timeoutMs),
      abort: (reason) => x.client.abort(x.toRequest(reason), timeoutMs),
    },
    () => fn(x),
  );
