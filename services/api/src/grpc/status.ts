import { status as Code } from '@grpc/grpc-js';
import { errorAnswer } from '../http/dtm-router';

/** The gRPC status of an error, by the HTTP status the API gives it (the cross-helper table). */
const CODES: Readonly<Record<number, Code>> = {
  400: Code.INVALID_ARGUMENT,
  413: Code.INVALID_ARGUMENT,
  422: Code.INVALID_ARGUMENT,
  404: Code.NOT_FOUND,
  // DTM's FAILURE (dtmgrpc.DtmError2GrpcError): clients read ABORTED as a business "no".
  409: Code.ABORTED,
  // DTM's ONGOING.
  425: Code.FAILED_PRECONDITION,
  401: Code.UNAUTHENTICATED,
  403: Code.PERMISSION_DENIED,
};

/** gRPC status code of an HTTP status; any other status is INTERNAL. */
export const grpcCodeOf = (httpStatus: number): Code => CODES[httpStatus] ?? Code.INTERNAL;

/** An error thrown by `DtmService` as a gRPC status: code, details (the API's message), and whether it is our fault. */
export const grpcError = (err: unknown): { code: Code; details: string; internal: boolean } => {
  const a = errorAnswer(err);
  return { code: grpcCodeOf(a.status), details: String(a.body.message), internal: a.internal };
};
