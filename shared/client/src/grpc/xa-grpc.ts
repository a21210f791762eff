import { BranchIdGen, checkOptions, httpTimeout } from '../options';
import type { XaOptions } from '../xa';
import {
  dtmGrpcClient,
  grpcTransOptions,
  payloadBytes,
  runGrpcTwoPhase,
  type DtmGrpcClient,
  type DtmGrpcRequest,
  type GrpcPayload,
} from './dtm-grpc-client';
import { invokeGrpcBranch } from './grpc-call';

/**
 * An XA transaction over the TM's gRPC API (DTM's `XaGrpc`), handed to the function given to
 * {@link xaGrpcGlobalTransaction}. Each {@link XaGrpc.callBranch} calls an RM's gRPC method with metadata
 * `dtm-op: action` and `dtm-phase2_url` (the same URL); the RM runs its part in a local XA transaction, registers
 * the branch with the TM (`RegisterBranch`, `Data {url}`) and leaves it prepared; the TM then calls the same
 * method with `dtm-op` commit or rollback.
 */
export class XaGrpc {
  private readonly ids = new BranchIdGen();
  readonly client: DtmGrpcClient;

  constructor(
    dtm: string | DtmGrpcClient,
    readonly gid: string,
    private readonly options: XaOptions = {},
  ) {
    checkOptions(options);
    this.client = dtmGrpcClient(dtm);
  }

  /** The `DtmRequest` of prepare/submit/abort. */
  toRequest(rollbackReason = ''): DtmGrpcRequest {
    return {
      Gid: this.gid,
      TransType: 'xa',
      TransOptions: grpcTransOptions(this.options),
      RollbackReason: rollbackReason,
    };
  }

  /**
   * Calls `url` (`host:port/package.Service/Method`) with `payload`; resolves with the reply's bytes.
   *
   * @throws {@link DtmFailure} ABORTED; {@link DtmOngoing} FAILED_PRECONDITION; {@link DtmTransportError} otherwise
   */
  callBranch(payload: GrpcPayload, url: string): Promise<Uint8Array> {
    return invokeGrpcBranch({
      url,
      dtm: this.client.target,
      gid: this.gid,
      transType: 'xa',
      branchId: this.ids.next(),
      op: 'action',
      payload: payloadBytes(payload),
      headers: this.options.branchHeaders,
      timeoutMs: httpTimeout(this.options),
    });
  }
}

/**
 * Runs an XA transaction over gRPC (see {@link xaGlobalTransaction}): prepare, `fn`, then submit (the TM commits
 * every prepared branch) or, when `fn` rejects, abort (the TM rolls them back) and rethrow.
 */
export function xaGrpcGlobalTransaction<T>(
  dtm: string | DtmGrpcClient,
  gid: string,
  fn: (xa: XaGrpc) => Promise<T>,
): Promise<T>;
export function xaGrpcGlobalTransaction<T>(
  dtm: string | DtmGrpcClient,
  gid: string,
  options: XaOptions,
  fn: (xa: XaGrpc) => Promise<T>,
): Promise<T>;
export function xaGrpcGlobalTransaction<T>(
  dtm: string | DtmGrpcClient,
  gid: string,
  a: XaOptions | ((xa: XaGrpc) => Promise<T>),
  b?: (xa: XaGrpc) => Promise<T>,
): Promise<T> {
  const [options, fn] = typeof a === 'function' ? [{}, a] : [a, b!];
  const xa = new XaGrpc(dtm, gid, options);
  return runGrpcTwoPhase(xa, httpTimeout(options), fn);
}
