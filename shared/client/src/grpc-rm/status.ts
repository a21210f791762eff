import { DtmBadRequest, DtmFailure, DtmOngoing } from '../errors';

/** gRPC status codes the RM side answers with (grpc/status; numbers, so this module needs no grpc-js at run time). */
export const GrpcCode = {
  INVALID_ARGUMENT: 3,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  INTERNAL: 13,
} as const;

/** A status a grpc-js unary handler passes to its callback: `callback(dtmGrpcError.failure('no'))`. */
export interface GrpcStatusError {
  readonly code: number;
  readonly details: string;
}

/**
 * The answers the TM reads as FAILURE and ONGOING (reference §3.2, DTM's `DtmError2GrpcError`):
 *
 * ```ts
 * callback(dtmGrpcError.failure('insufficient funds')); // ABORTED: a saga action rolls back
 * callback(dtmGrpcError.ongoing());                     // FAILED_PRECONDITION: asked again after retry_interval
 * ```
 */
export const dtmGrpcError = {
  /** ABORTED: a business "no". Final for a saga action (and a msg check-back); retried in second phases. */
  failure: (message = 'FAILURE'): GrpcStatusError => ({ code: GrpcCode.ABORTED, details: message }),
  /** FAILED_PRECONDITION: not done yet; the TM asks again after the fixed retry_interval. */
  ongoing: (message = 'ONGOING'): GrpcStatusError => ({ code: GrpcCode.FAILED_PRECONDITION, details: message }),
};

/**
 * The status an error from an RM handler is answered with: {@link DtmFailure} → ABORTED, {@link DtmOngoing} →
 * FAILED_PRECONDITION, {@link DtmBadRequest} → INVALID_ARGUMENT, anything else → INTERNAL (the TM retries with
 * back-off). The message is kept as the status details.
 */
export const grpcStatusOf = (err: unknown): GrpcStatusError => {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof DtmFailure) return dtmGrpcError.failure(message);
  if (err instanceof DtmOngoing) return dtmGrpcError.ongoing(message);
  if (err instanceof DtmBadRequest) return { code: GrpcCode.INVALID_ARGUMENT, details: message };
  return { code: GrpcCode.INTERNAL, details: message };
};
