import type { BranchOutcome } from '../global-transaction/commands';

/**
 * Interprets an HTTP answer of a branch by the reference's rules (§3.2), in this order:
 * 425 or a body containing ONGOING → ongoing; 409 or a body containing FAILURE → failure;
 * any other status than 200 → error (retried); else success. Transport errors never reach here.
 */
export const classifyHttp = (status: number, body: string): BranchOutcome => {
  const detail = body.length > 512 ? `${body.slice(0, 512)}…` : body;
  if (status === 425 || body.includes('ONGOING')) return { kind: 'ongoing', detail: detail || `HTTP ${status}` };
  if (status === 409 || body.includes('FAILURE')) return { kind: 'failure', detail };
  if (status !== 200) return { kind: 'error', detail: `HTTP ${status}: ${detail}` };
  return { kind: 'success' };
};

/** gRPC status codes the classification names (grpc/status). */
const GRPC_OK = 0;
const GRPC_FAILED_PRECONDITION = 9;
const GRPC_ABORTED = 10;
const GRPC_CODE_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

/** `UNAVAILABLE` for 14, `code 99` for a code gRPC does not define. */
export const grpcCodeName = (code: number): string => GRPC_CODE_NAMES[code] ?? `code ${code}`;

/**
 * Interprets the status of a gRPC branch call (DTM's `GrpcError2DtmError`, reference §3.2): OK → success;
 * ABORTED → failure, except the message exactly `ONGOING` (clients before DTM 1.10) → ongoing;
 * FAILED_PRECONDITION → ongoing; any other code (UNAVAILABLE, INTERNAL, DEADLINE_EXCEEDED, …) → error (retried).
 */
export const classifyGrpc = (code: number, message: string): BranchOutcome => {
  if (code === GRPC_OK) return { kind: 'success' };
  const detail = message.length > 512 ? `${message.slice(0, 512)}…` : message;
  if (code === GRPC_ABORTED) {
    return message === 'ONGOING' ? { kind: 'ongoing', detail } : { kind: 'failure', detail: detail || 'ABORTED' };
  }
  if (code === GRPC_FAILED_PRECONDITION) return { kind: 'ongoing', detail: detail || 'FAILED_PRECONDITION' };
  return { kind: 'error', detail: `gRPC ${grpcCodeName(code)}: ${detail}` };
};

/** JSON-RPC error codes of an RM's answer (reference §1.2): the business "no", and "not done yet". */
export const JSON_RPC_FAILURE = -32901;
export const JSON_RPC_ONGOING = -32902;

/**
 * Interprets the answer of a JSON-RPC branch (DTM's `HTTPResp2DtmError` then `RespAsErrorByJSONRPC`): the
 * HTTP rules first (425/ONGOING, 409/FAILURE, not 200); then `error` absent or null → success, error code
 * -32901 → failure, -32902 → ongoing, any other error (or an answer that is not a JSON-RPC object) → error.
 */
export const classifyJsonRpc = (status: number, body: string): BranchOutcome => {
  const http = classifyHttp(status, body);
  if (http.kind !== 'success') return http;
  const detail = body.length > 512 ? `${body.slice(0, 512)}…` : body;
  let answer: unknown;
  try {
    answer = JSON.parse(body);
  } catch {
    return { kind: 'error', detail: `not a JSON-RPC answer: ${detail}` };
  }
  if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) {
    return { kind: 'error', detail: `not a JSON-RPC answer: ${detail}` };
  }
  const error = (answer as { error?: unknown }).error;
  if (error === undefined || error === null) return { kind: 'success' };
  const code = typeof error === 'object' ? (error as { code?: unknown }).code : undefined;
  if (code === JSON_RPC_FAILURE) return { kind: 'failure', detail };
  if (code === JSON_RPC_ONGOING) return { kind: 'ongoing', detail };
  return { kind: 'error', detail: `JSON-RPC error ${String(code)}: ${detail}` };
};
