import type { Metadata } from '@grpc/grpc-js';
import { DtmBadRequest } from '../errors';
import { BranchIdGen, checkOptions, httpTimeout } from '../options';
import type { TccOptions } from '../tcc';
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

const firstValue = (md: Metadata, key: string): string => {
  const v = md.get(key)[0];
  return typeof v === 'string' ? v : '';
};

/**
 * A TCC transaction over the TM's gRPC API (DTM's `TccGrpc`), handed to the function given to
 * {@link tccGrpcGlobalTransaction}. Each {@link TccGrpc.callBranch} registers the branch's confirm and cancel
 * methods with the TM, then calls its try method with the dtm metadata.
 */
export class TccGrpc {
  private readonly ids: BranchIdGen;
  readonly client: DtmGrpcClient;

  constructor(
    dtm: string | DtmGrpcClient,
    readonly gid: string,
    private readonly options: TccOptions = {},
    parentBranchId = '',
  ) {
    checkOptions(options);
    this.client = dtmGrpcClient(dtm);
    this.ids = new BranchIdGen(parentBranchId);
  }

  /**
   * Nested TCC (DTM's `TccFromGrpc`): the transaction an RM's try method runs in, read from the call's metadata
   * (`dtm-dtm`, `dtm-gid`, `dtm-branch_id`); its branches become sub-branches of that branch.
   */
  static fromMetadata(md: Metadata, options: TccOptions = {}): TccGrpc {
    const dtm = firstValue(md, 'dtm-dtm');
    const gid = firstValue(md, 'dtm-gid');
    if (dtm === '' || gid === '') throw new DtmBadRequest(`bad tcc info: dtm '${dtm}', gid '${gid}'`);
    return new TccGrpc(dtm, gid, options, firstValue(md, 'dtm-branch_id'));
  }

  /** The `DtmRequest` of prepare/submit/abort. */
  toRequest(rollbackReason = ''): DtmGrpcRequest {
    return {
      Gid: this.gid,
      TransType: 'tcc',
      TransOptions: grpcTransOptions(this.options),
      RollbackReason: rollbackReason,
    };
  }

  /**
   * Registers a branch (`Data {confirm, cancel}`, `payload` as `BusiPayload`), then calls `tryUrl` with `payload` and
   * metadata `dtm-op: try`. Resolves with the try's reply bytes.
   *
   * @throws {@link DtmFailure} the try answered ABORTED, or the TM refused the registration
   * @throws {@link DtmOngoing} the try answered FAILED_PRECONDITION
   * @throws {@link DtmTransportError} any other status
   */
  async callBranch(payload: GrpcPayload, tryUrl: string, confirmUrl: string, cancelUrl: string): Promise<Uint8Array> {
    const branchId = this.ids.next();
    const bytes = payloadBytes(payload);
    const timeoutMs = httpTimeout(this.options);
    await this.client.registerBranch(
      {
        Gid: this.gid,
        TransType: 'tcc',
        BranchID: branchId,
        BusiPayload: bytes,
        Data: { confirm: confirmUrl, cancel: cancelUrl },
      },
      timeoutMs,
    );
    return invokeGrpcBranch({
      url: tryUrl,
      dtm: this.client.target,
      gid: this.gid,
      transType: 'tcc',
      branchId,
      op: 'try',
      payload: bytes,
      headers: this.options.branchHeaders,
      timeoutMs,
    });
  }
}

/**
 * Runs a TCC transaction over gRPC (see {@link tccGlobalTransaction}): prepare, `fn`, then submit (the TM confirms
 * every branch) or, when `fn` rejects, abort (the TM cancels them) and rethrow.
 *
 * ```ts
 * await tccGrpcGlobalTransaction('localhost:36790', gid, async (tcc) => {
 *   await tcc.callBranch(req, `${a}/bank.Bank/TryOut`, `${a}/bank.Bank/ConfirmOut`, `${a}/bank.Bank/CancelOut`);
 * });
 * ```
 */
export function tccGrpcGlobalTransaction<T>(
  dtm: string | DtmGrpcClient,
  gid: string,
  fn: (tcc: TccGrpc) => Promise<T>,
): Promise<T>;
export function tccGrpcGlobalTransaction<T>(
  dtm: string | DtmGrpcClient,
  gid: string,
  options: TccOptions,
  fn: (tcc: TccGrpc) => Promise<T>,
): Promise<T>;
export function tccGrpcGlobalTransaction<T>(
  dtm: string | DtmGrpcClient,
  gid: string,
  a: TccOptions | ((tcc: TccGrpc) => Promise<T>),
  b?: (tcc: TccGrpc) => Promise<T>,
): Promise<T> {
  const [options, fn] = typeof a === 'function' ? [{}, a] : [a, b!];
  const tcc = new TccGrpc(dtm, gid, options);
  return runGrpcTwoPhase(tcc, httpTimeout(options), fn);
}
