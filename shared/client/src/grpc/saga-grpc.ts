import { checkOptions, httpTimeout } from '../options';
import type { SagaOptions } from '../saga';
import {
  dtmGrpcClient,
  grpcTransOptions,
  payloadBytes,
  type DtmGrpcClient,
  type DtmGrpcRequest,
  type GrpcPayload,
} from './dtm-grpc-client';

/**
 * A saga submitted over the TM's gRPC API (DTM's `SagaGrpc`): branch URLs in DTM's gRPC format
 * `host:port/package.Service/Method` (http(s) URLs are called over HTTP), payloads as bytes, usually a protobuf
 * message encoded by the caller. The TM sends each step's bytes to its action and, on rollback, to its compensation.
 *
 * ```ts
 * await new SagaGrpc('localhost:36790', gid)
 *   .add('bank-a:50051/bank.Bank/TransOut', 'bank-a:50051/bank.Bank/TransOutRevert', Req.encode(req).finish())
 *   .add('bank-b:50051/bank.Bank/TransIn', 'bank-b:50051/bank.Bank/TransInRevert', Req.encode(req).finish())
 *   .submit();
 * ```
 */
export class SagaGrpc {
  private readonly steps: { action: string; compensate: string }[] = [];
  private readonly payloads: Uint8Array[] = [];
  private readonly orders: Record<number, number[]> = {};
  private concurrent = false;
  private readonly client: DtmGrpcClient;

  /**
   * @param dtm the TM's gRPC target (`localhost:36790`) or a {@link DtmGrpcClient}
   * @param gid a unique id (see {@link DtmGrpcClient.newGid})
   */
  constructor(
    dtm: string | DtmGrpcClient,
    readonly gid: string,
    private readonly options: SagaOptions = {},
  ) {
    checkOptions(options);
    this.client = dtmGrpcClient(dtm);
  }

  /** Adds a step; `payload` (bytes, or a string sent as its UTF-8) goes to both methods. */
  add(action: string, compensate: string, payload?: GrpcPayload): this {
    this.steps.push({ action, compensate });
    this.payloads.push(payloadBytes(payload));
    return this;
  }

  /** Concurrent sagas: step `branch` starts only after every step in `preBranches` succeeded. */
  addBranchOrder(branch: number, preBranches: readonly number[]): this {
    this.orders[branch] = [...preBranches];
    return this;
  }

  /** Lets the TM run steps at the same time (subject to {@link SagaGrpc.addBranchOrder}). */
  enableConcurrent(): this {
    this.concurrent = true;
    return this;
  }

  /** The `DtmRequest`, as DTM's Go client builds it. */
  toRequest(): DtmGrpcRequest {
    return {
      Gid: this.gid,
      TransType: 'saga',
      Steps: JSON.stringify(this.steps),
      BinPayloads: this.payloads,
      CustomedData: this.concurrent ? JSON.stringify({ orders: this.orders, concurrent: true }) : '',
      TransOptions: grpcTransOptions(this.options),
    };
  }

  /**
   * Submits the saga (see {@link Saga.submit}).
   *
   * @throws {@link DtmFailure} the TM refused (ABORTED: the gid is finished, or `waitResult` and not succeeded)
   * @throws {@link DtmTransportError} INVALID_ARGUMENT (bad input), UNAVAILABLE, a timeout: submitting again is safe
   */
  async submit(): Promise<void> {
    await this.client.submit(this.toRequest(), httpTimeout(this.options));
  }
}
