/**
 * `@dtm-ts/client`: define global transactions against a DTM-compatible TM (saga, TCC, XA, two-phase messages)
 * and write RM handlers that are safe under duplicates and reordering (the sub-transaction barrier on PostgreSQL,
 * MySQL/MariaDB and Redis). See README.md.
 */
export { DtmBadRequest, DtmDuplicated, DtmError, DtmFailure, DtmOngoing, DtmTransportError } from './errors';
export type { DtmErrorDetails } from './errors';
export { DEFAULT_HTTP_TIMEOUT_MS, errorOfAnswer, setTmAuthorization } from './http';
export type { BranchResponse } from './http';
export { BranchIdGen, encodePayload } from './options';
export type { TransOptions } from './options';
export { newGid, query } from './gid';
export type { BranchRecord, GlobalStatus, QueryResult, TransactionRecord } from './gid';
export { Saga } from './saga';
export type { SagaOptions } from './saga';
export { Tcc, tccGlobalTransaction } from './tcc';
export type { TccOptions } from './tcc';
export { Xa, xaGlobalTransaction, xaLocalTransaction } from './xa';
export type { XaBranch, XaOptions, XaResource } from './xa';
export { Msg } from './msg';
export type { MsgOptions } from './msg';
export { BranchBarrier, DEFAULT_BARRIER_TABLE, MSG_BARRIER } from './barrier';
export type { BarrierKey, BarrierOutcome, BarrierRow, BarrierSkip, RedisBarrierLike, SqlBarrierStore } from './barrier';
export { PgBarrierStore, PgXaResource, pgBarrierDdl } from './postgres';
export type { PgBarrierOptions } from './postgres';
export { MysqlBarrierStore, MysqlXaResource, mysqlBarrierDdl } from './mysql';
export type { MysqlBarrierOptions } from './mysql';
export { RedisBarrierStore } from './redis';
export type { RedisBarrierOptions } from './redis';
export {
  branchInfo,
  DtmResult,
  keepRawBody,
  queryPreparedHandler,
  replyError,
  replyFailure,
  replyOngoing,
  replySuccess,
  rmHandler,
  verifyBranchSignature,
} from './express';
export type { BranchInfo, VerifyBranchSignatureOptions } from './express';
export { BranchSignatureVerifier, SIGNATURE_HEADER, signBranchCall } from './branch-signature';
export type { SignedCall, Verdict, VerifierOptions } from './branch-signature';
export type { QueryLike } from './query-params';
export {
  DtmGrpcClient,
  type DtmGrpcBranchRequest,
  type DtmGrpcClientOptions,
  type DtmGrpcProgresses,
  type DtmGrpcRequest,
  type GrpcPayload,
} from './grpc/dtm-grpc-client';
export {
  closeGrpcChannels,
  DTMGIMP_PROTO,
  dtmgimpMethods,
  errorOfGrpcStatus,
  invokeGrpcBranch,
  parseGrpcUrl,
} from './grpc/grpc-call';
export { SagaGrpc } from './grpc/saga-grpc';
export { MsgGrpc } from './grpc/msg-grpc';
export { TccGrpc, tccGrpcGlobalTransaction } from './grpc/tcc-grpc';
export { XaGrpc, xaGrpcGlobalTransaction } from './grpc/xa-grpc';
export { DTM_METADATA, grpcBranchInfo, metadataValue } from './grpc-rm/metadata';
export type { MetadataLike } from './grpc-rm/metadata';
export { dtmGrpcError, GrpcCode, grpcStatusOf } from './grpc-rm/status';
export type { GrpcStatusError } from './grpc-rm/status';
export { grpcQueryPreparedHandler, grpcRmHandler } from './grpc-rm/handler';
