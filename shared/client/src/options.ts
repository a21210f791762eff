import { DEFAULT_HTTP_TIMEOUT_MS } from './http';

/**
 * Options of a global transaction, sent to the TM with it (reference §2.1). Durations are whole seconds; 0 or
 * absent means the TM's default.
 */
export interface TransOptions {
  /** Submit (and abort) answer only after one processing pass, with its outcome: 409 when it did not succeed. */
  readonly waitResult?: boolean;
  /** Give up after this long from creation (tcc, xa, msg check-back; saga only when set). */
  readonly timeoutToFail?: number;
  /** Timeout of each branch call the TM makes. */
  readonly requestTimeout?: number;
  /** Base retry interval: ONGOING retries at this fixed interval, errors back off from it. */
  readonly retryInterval?: number;
  /** Saga: most retries of actions before the saga rolls back. */
  readonly retryLimit?: number;
  /** Headers added to every branch call the TM makes. */
  readonly branchHeaders?: Readonly<Record<string, string>>;
  /**
   * Client side, not sent: bound of each HTTP call this client makes to the TM, and of the branch calls the AP
   * makes itself (TCC try, XA action), in ms. Default 30 000.
   */
  readonly httpTimeoutMs?: number;
}

const SECONDS: readonly (keyof TransOptions)[] = ['timeoutToFail', 'requestTimeout', 'retryInterval', 'retryLimit'];

/** Rejects options the TM would refuse with a 400, before anything is sent. */
export const checkOptions = (o: TransOptions): void => {
  for (const k of SECONDS) {
    const v = o[k];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 0)) {
      throw new TypeError(`${k} must be a whole number of seconds (>= 0), got ${JSON.stringify(v)}`);
    }
  }
  if (o.httpTimeoutMs !== undefined && !(o.httpTimeoutMs > 0)) throw new TypeError('httpTimeoutMs must be > 0');
};

/** The options as DTM's wire names, leaving out what is unset (as Go's `omitempty`). */
export const wireOptions = (o: TransOptions): Record<string, unknown> => {
  const w: Record<string, unknown> = {};
  if (o.waitResult) w.wait_result = true;
  if (o.timeoutToFail) w.timeout_to_fail = o.timeoutToFail;
  if (o.requestTimeout) w.request_timeout = o.requestTimeout;
  if (o.retryInterval) w.retry_interval = o.retryInterval;
  if (o.retryLimit) w.retry_limit = o.retryLimit;
  if (o.branchHeaders && Object.keys(o.branchHeaders).length > 0) w.branch_headers = { ...o.branchHeaders };
  return w;
};

/** The client-side timeout of the options. */
export const httpTimeout = (o: TransOptions): number => o.httpTimeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;

/**
 * A branch payload as the TM stores it: JSON text of `payload`, or the empty string when `payload` is undefined
 * (the TM then calls the branch with GET and no body).
 */
export const encodePayload = (payload: unknown): string => (payload === undefined ? '' : JSON.stringify(payload));

/**
 * Hands out sub-branch ids as DTM does (`BranchIDGen`): the parent id followed by `01`, `02`, … up to `99`.
 * Nested TCC branches concatenate: branch `01` of parent `03` is `0301`.
 */
export class BranchIdGen {
  private count = 0;
  constructor(readonly parent = '') {
    if (parent.length >= 20) throw new RangeError(`branch id '${parent}' is too long to have sub-branches (20+)`);
  }

  /** The next id; throws once 99 are used. */
  next(): string {
    if (this.count >= 99) throw new RangeError('a transaction can have at most 99 branches per level');
    this.count++;
    return `${this.parent}${String(this.count).padStart(2, '0')}`;
  }
}
