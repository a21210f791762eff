/** What an error carries besides its message: the HTTP answer it came from, if any, and its cause. */
export interface DtmErrorDetails {
  /** HTTP status of the answer that produced the error; absent when there was no answer (or no HTTP at all). */
  readonly status?: number;
  /** Body of that answer, as text. */
  readonly body?: string;
  /** gRPC status code of the answer, when the call was made over gRPC. */
  readonly grpcCode?: number;
  readonly cause?: unknown;
}

/** Base class of every error this client throws on purpose; `instanceof DtmError` tells them from bugs. */
export abstract class DtmError extends Error {
  /** HTTP status of the answer this error stands for, if it came from one. */
  readonly status: number | undefined;
  /** Body of that answer. */
  readonly body: string | undefined;
  /** gRPC status code of the answer (the gRPC flavour): ABORTED is 10, FAILED_PRECONDITION 9, UNAVAILABLE 14, … */
  readonly grpcCode: number | undefined;

  constructor(message: string, details: DtmErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.status = details.status;
    this.body = details.body;
    this.grpcCode = details.grpcCode;
  }
}

/**
 * A business "no" (DTM's FAILURE): HTTP 409, or an answer whose body contains `FAILURE` (reference §3.2).
 *
 * Thrown by the TM calls when the TM refuses (submit after abort, registerBranch on a finished transaction), by
 * AP-made branch calls (a TCC try or an XA action that said no), and by the barrier's query-prepared check
 * when the local transaction rolled back. Throw it from an RM handler wrapped in {@link rmHandler} to answer 409.
 */
export class DtmFailure extends DtmError {
  override readonly name = 'DtmFailure';
  constructor(message = 'FAILURE', details: DtmErrorDetails = {}) {
    super(message, details);
  }
}

/**
 * "Not done yet, ask again later" (DTM's ONGOING): HTTP 425, or a body containing `ONGOING`. The TM retries an
 * ONGOING branch after a fixed `retry_interval`. Throw it from an RM handler to answer 425.
 */
export class DtmOngoing extends DtmError {
  override readonly name = 'DtmOngoing';
  constructor(message = 'ONGOING', details: DtmErrorDetails = {}) {
    super(message, details);
  }
}

/**
 * The call did not get a usable answer: connection refused or reset, a timeout, or an HTTP status other than
 * 200, 409 and 425 (a 500, a 404 for an unknown gid, a 422 for bad input). The outcome is unknown: the request may
 * or may not have taken effect. `status` is set when there was an answer.
 */
export class DtmTransportError extends DtmError {
  override readonly name = 'DtmTransportError';
}

/**
 * The barrier of a two-phase message found its row already there (reference §7, step 4): the TM's check-back,
 * or an earlier attempt with the same gid, got there first. {@link Msg.doAndSubmit} then asks the
 * query-prepared endpoint what happened instead of guessing.
 */
export class DtmDuplicated extends DtmError {
  override readonly name = 'DtmDuplicated';
  constructor(message = 'DUPLICATED', details: DtmErrorDetails = {}) {
    super(message, details);
  }
}

/** A branch request without the query parameters the barrier needs (gid, trans_type, branch_id, op); answered 400. */
export class DtmBadRequest extends DtmError {
  override readonly name = 'DtmBadRequest';
}
