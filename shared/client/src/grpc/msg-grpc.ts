import type { BranchBarrier, SqlBarrierStore } from '../barrier';
import { MSG_BARRIER } from '../barrier';
import { msgBarrierValue, runDoAndSubmit } from '../msg';
import { checkOptions, httpTimeout, type TransOptions } from '../options';
import { MsgSteps } from '../steps';
import {
  dtmGrpcClient,
  grpcTransOptions,
  payloadBytes,
  type DtmGrpcClient,
  type DtmGrpcRequest,
  type GrpcPayload,
} from './dtm-grpc-client';
import { invokeGrpcBranch } from './grpc-call';

/**
 * A two-phase message over the TM's gRPC API (DTM's `MsgGrpc`; see {@link Msg} for the flow). Steps are gRPC
 * methods `host:port/package.Service/Method` (or `topic://<name>`), payloads bytes; the check-back is a gRPC method
 * too, called with metadata `dtm-branch_id: 00`, `dtm-op: msg`. DTM's `DtmRequest` has no `concurrent` field, so
 * the steps are delivered in order.
 */
export class MsgGrpc extends MsgSteps<GrpcPayload, Uint8Array> {
  private readonly client: DtmGrpcClient;

  constructor(
    dtm: string | DtmGrpcClient,
    readonly gid: string,
    private readonly options: TransOptions = {},
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
      TransType: 'msg',
      Steps: JSON.stringify(this.steps),
      BinPayloads: this.payloads,
      QueryPrepared: this.queryPreparedUrl,
      CustomedData: this.customData(),
      TransOptions: grpcTransOptions(this.options),
    };
  }

  /** Phase one: stored as prepared; `queryPrepared` is asked if no submit or abort comes before `timeoutToFail`. */
  async prepare(queryPrepared?: string): Promise<void> {
    if (queryPrepared) this.queryPreparedUrl = queryPrepared;
    await this.client.prepare(this.toRequest(), httpTimeout(this.options));
  }

  /** Submits: the TM delivers the steps. */
  async submit(): Promise<void> {
    await this.client.submit(this.toRequest(), httpTimeout(this.options));
  }

  /** Aborts a prepared message: it ends failed and nothing is delivered. */
  async abort(): Promise<void> {
    await this.client.abort({ Gid: this.gid, TransType: 'msg' }, httpTimeout(this.options));
  }

  /** Prepare, local transaction behind the barrier, submit (see {@link Msg.doAndSubmit}); the check-back over gRPC. */
  doAndSubmit<T>(queryPrepared: string, busi: (bb: BranchBarrier) => Promise<T>): Promise<T> {
    return runDoAndSubmit(
      {
        gid: this.gid,
        prepare: () => this.prepare(queryPrepared),
        submit: () => this.submit(),
        abort: () => this.abort(),
        checkBack: () =>
          invokeGrpcBranch({
            url: queryPrepared,
            dtm: this.client.target,
            gid: this.gid,
            transType: 'msg',
            branchId: MSG_BARRIER.branchId,
            op: MSG_BARRIER.op,
            payload: new Uint8Array(),
            timeoutMs: httpTimeout(this.options),
          }),
      },
      busi,
    );
  }

  /** {@link MsgGrpc.doAndSubmit} with `busi` run as a local transaction of `store` behind the barrier. */
  doAndSubmitDb<Tx, T>(queryPrepared: string, store: SqlBarrierStore<Tx>, busi: (tx: Tx) => Promise<T>): Promise<T> {
    return this.doAndSubmit(queryPrepared, async (bb) => msgBarrierValue(await bb.call(store, busi)));
  }
}
