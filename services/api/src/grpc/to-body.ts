import { BadRequest } from '../http/bad-request';
import type { DtmBranchRequest, DtmProgressesReply, DtmRequest } from './dtmgimp';

type Json = Record<string, unknown>;

const base64 = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');

/** `Steps` is JSON text (DTM's client marshals its step list, `null` when it has none). */
const parseSteps = (steps: string): unknown => {
  if (steps === '') return undefined;
  try {
    return JSON.parse(steps) as unknown;
  } catch {
    throw new BadRequest('Steps must be JSON text: an array of objects of strings');
  }
};

/**
 * A `DtmRequest` as the JSON body `DtmService` takes, field by field as DTM's `TransFromDtmRequest`
 * reads it: protocol grpc, `Steps` parsed, `BinPayloads` as `bin_payloads` (base64), the options
 * flattened. The body is then validated like any HTTP or JSON-RPC body.
 */
export const globalBody = (r: DtmRequest): Json => {
  const o = r.TransOptions;
  return {
    gid: r.Gid,
    trans_type: r.TransType,
    protocol: 'grpc',
    steps: parseSteps(r.Steps),
    bin_payloads: r.BinPayloads.map(base64),
    custom_data: r.CustomedData,
    query_prepared: r.QueryPrepared,
    rollback_reason: r.RollbackReason,
    req_extra: r.ReqExtra,
    wait_result: o?.WaitResult ?? false,
    timeout_to_fail: o?.TimeoutToFail ?? 0,
    retry_interval: o?.RetryInterval ?? 0,
    request_timeout: o?.RequestTimeout ?? 0,
    retry_limit: o?.RetryLimit ?? 0,
    branch_headers: o?.BranchHeaders ?? {},
  };
};

/** The keys of `DtmBranchRequest.Data` DTM reads: tcc confirm/cancel, xa url, workflow op/status. */
const DATA_KEYS = ['confirm', 'cancel', 'url', 'op', 'status'] as const;

/**
 * A `DtmBranchRequest` as the registerBranch body: `Data`'s keys beside gid, trans_type and
 * branch_id, `BusiPayload` as `bin_data` (base64). Other `Data` keys are ignored, as DTM does.
 */
export const branchBody = (r: DtmBranchRequest): Json => {
  const body: Json = {
    gid: r.Gid,
    trans_type: r.TransType,
    branch_id: r.BranchID,
    protocol: 'grpc',
    bin_data: base64(r.BusiPayload),
  };
  for (const k of DATA_KEYS) {
    const v = r.Data[k];
    if (v !== undefined) body[k] = v;
  }
  return body;
};

/** The `prepareWorkflow` answer (DTM's protobuf JSON field names) as a `DtmProgressesReply`. */
export const progressesReply = (answer: Json): DtmProgressesReply => {
  const t = (answer.transaction ?? {}) as Record<string, string | undefined>;
  const progresses = (answer.progresses ?? []) as Record<string, string | undefined>[];
  return {
    Transaction: {
      Gid: t.gid ?? '',
      Status: t.status ?? '',
      RollbackReason: t.rollback_reason ?? '',
      Result: t.result ?? '',
    },
    Progresses: progresses.map((p) => ({
      Status: p.status ?? '',
      BinData: Buffer.from(p.bin_data ?? '', 'base64'),
      BranchID: p.branch_id ?? '',
      Op: p.op ?? '',
    })),
  };
};
