import { checkOptions, httpTimeout } from '../options';
import type { SagaOptions } from '../saga';
import { SagaSteps } from '../steps';
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
export class SagaGrpc extends SagaSteps<GrpcPayload, Uint8Array> {
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
    super();
    checkOptions(options);
    this.client = dtmGrpcClient(dtm);
  }

  /** Payloads are bytes; a string is sent as its UTF-8. */
  protected encode(payload: GrpcPayload | undefined): Uint8Array {
    return payloadBytes(payload);
  }

  /** The `DtmRequest`, as DTM's Go client builds it. */
  toRequest(): DtmGrpcRequest {
    return {
      Gid: this.gid,
      TransType: 'saga',
      Steps: JSON.stringify(this.steps),
      BinPayloads: this.payloads,
      CustomedData: this.customData(),
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
