import type { handleUnaryCall, sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { BranchBarrier, type RedisBarrierLike, type SqlBarrierStore } from '../barrier';
import { grpcStatusOf } from './status';

/**
 * Wraps an async gRPC RM method for grpc-js: when it resolves, answers OK with its value (or `empty` when it
 * resolves to nothing: `{}` suits google.protobuf.Empty loaded with proto-loader; pass `Buffer.alloc(0)` for a
 * raw-bytes service); when it rejects, answers the status {@link grpcStatusOf} maps the error to.
 *
 * ```ts
 * server.addService(busi.Busi.service, {
 *   TransOut: grpcRmHandler(async (call) => {
 *     await BranchBarrier.fromGrpcMetadata(call.metadata).call(store, (tx) => debit(tx, call.request));
 *   }),
 *   TransIn: grpcRmHandler(async (call) => {
 *     if (call.request.Amount > 1000) throw new DtmFailure('over the limit'); // ABORTED: the saga rolls back
 *   }),
 * });
 * ```
 */
export const grpcRmHandler =
  <Req, Res>(
    handler: (call: ServerUnaryCall<Req, Res>) => Promise<Res | undefined | void>,
    empty: Res = {} as Res,
  ): handleUnaryCall<Req, Res> =>
  (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    handler(call).then(
      (value) => callback(null, value ?? empty),
      (err: unknown) => callback(grpcStatusOf(err)),
    );
  };

/**
 * A gRPC handler for a two-phase message's check-back (`query_prepared`) on the database (or Redis) the AP's local
 * transactions run in: OK when the local transaction committed, ABORTED when it rolled back or never ran.
 */
export const grpcQueryPreparedHandler = <Req, Res>(
  store: SqlBarrierStore<unknown> | RedisBarrierLike,
  empty?: Res,
): handleUnaryCall<Req, Res> =>
  grpcRmHandler<Req, Res>((call) => BranchBarrier.fromGrpcMetadata(call.metadata).queryPrepared(store), empty);
