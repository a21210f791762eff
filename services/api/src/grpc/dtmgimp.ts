import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

/** DTM's `dtmgimp.proto`, kept in the repo at shared/proto (the client SDK loads the same file). */
export const DTMGIMP_PROTO = fileURLToPath(new URL('../../../../shared/proto/dtmgimp.proto', import.meta.url));

/**
 * The `dtmgimp.Dtm` service definition. `keepCase` keeps DTM's field names (`Gid`, `BinPayloads`, …);
 * `defaults` fills absent fields with proto3's zero values, as Go's generated structs read them; int64
 * fields arrive as numbers (the option ranges the API accepts are far below 2^53).
 */
export const dtmServiceDefinition = (): ServiceDefinition => {
  const pkg = loadPackageDefinition(
    loadSync(DTMGIMP_PROTO, {
      keepCase: true,
      longs: Number,
      enums: String,
      defaults: true,
      arrays: true,
      objects: true,
    }),
  ) as unknown as { dtmgimp: { Dtm: { service: ServiceDefinition } } };
  return pkg.dtmgimp.Dtm.service;
};

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
