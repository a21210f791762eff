import type { ServiceDefinition } from '@grpc/grpc-js';
import { dtmgimpMethods } from '@dtm-ts/client';

/** DTM's `dtmgimp.proto`, kept in the repo at shared/proto; the client SDK loads it and the TM serves it. */
export { DTMGIMP_PROTO } from '@dtm-ts/client';

/**
 * The `dtmgimp.Dtm` service definition, as the client SDK loads it: DTM's field names (`keepCase`), absent fields
 * as proto3's zero values (as Go's generated structs read them), int64 as numbers (the option ranges the API
 * accepts are far below 2^53).
 */
export const dtmServiceDefinition = (): ServiceDefinition => dtmgimpMethods();

/** `DtmTransOptions` as decoded. */
export interface DtmTransOptions {
  readonly WaitResult: boolean;
  readonly TimeoutToFail: number;
  readonly RetryInterval: number;
  readonly BranchHeaders: Readonly<Record<string, string>>;
  readonly RequestTimeout: number;
  readonly RetryLimit: number;
}

/** `DtmRequest` as decoded: every field present (proto3 defaults); a message field may be null. */
export interface DtmRequest {
  readonly Gid: string;
  readonly TransType: string;
  readonly TransOptions: DtmTransOptions | null;
  readonly CustomedData: string;
  readonly BinPayloads: readonly Uint8Array[];
  readonly QueryPrepared: string;
  readonly Steps: string;
  readonly ReqExtra: Readonly<Record<string, string>>;
  readonly RollbackReason: string;
}

/** `DtmBranchRequest` as decoded. */
export interface DtmBranchRequest {
  readonly Gid: string;
  readonly TransType: string;
  readonly BranchID: string;
  readonly Op: string;
  readonly Data: Readonly<Record<string, string>>;
  readonly BusiPayload: Uint8Array;
}

/** `DtmTopicRequest` as decoded. */
export interface DtmTopicRequest {
  readonly Topic: string;
  readonly URL: string;
  readonly Remark: string;
}

/** `DtmProgressesReply`, as sent. */
export interface DtmProgressesReply {
  readonly Transaction: { Gid: string; Status: string; RollbackReason: string; Result: string };
  readonly Progresses: { Status: string; BinData: Buffer; BranchID: string; Op: string }[];
}
