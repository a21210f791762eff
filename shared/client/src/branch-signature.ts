import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signed branch calls (README, "Signed branch calls"). The TM signs every call it makes to an RM:
 *
 *     dtm-signature: t=<unix ms>,v1=<hex HMAC-SHA256>
 *
 * over the bytes of `<t>\n<METHOD>\n<path?query as sent>\n<body>` with the shared key (BRANCH_SIGNING_KEY).
 * An RM recomputes it over what it received and compares in constant time, refuses a `t` outside its window,
 * and remembers the signatures it accepted within the window so that a replay is refused.
 */
export const SIGNATURE_HEADER = 'dtm-signature';

/** What a signature covers. */
export interface SignedCall {
  /** Upper case, as sent: `POST`, `GET`. */
  readonly method: string;
  /** The request target as sent: path and query, e.g. `/TransIn?gid=g1&trans_type=saga&branch_id=01&op=action`. */
  readonly path: string;
  /** The body bytes (UTF-8 for a string); empty for a GET. */
  readonly body: string | Uint8Array;
}

const digest = (key: string | Uint8Array, t: number, call: SignedCall): Buffer =>
  createHmac('sha256', key).update(`${t}\n${call.method.toUpperCase()}\n${call.path}\n`).update(call.body).digest();

/** The `dtm-signature` header value for `call` at `timestampMs`. */
export const signBranchCall = (key: string | Uint8Array, call: SignedCall, timestampMs: number): string =>
  `t=${timestampMs},v1=${digest(key, timestampMs, call).toString('hex')}`;

/** Options of {@link BranchSignatureVerifier}. */
export interface VerifierOptions {
  /** The key, or several while rotating (a call signed with any of them is accepted). */
  readonly key: string | Uint8Array | readonly (string | Uint8Array)[];
  /** How far a call's timestamp may be from now, either way (default 5 minutes). */
  readonly toleranceMs?: number;
  /** Most accepted signatures remembered to refuse replays (default 100,000). */
  readonly maxRemembered?: number;
  /** The clock (tests). */
  readonly now?: () => number;
}

/** The verdict on one call: accepted, or why not. */
export type Verdict = { readonly ok: true } | { readonly ok: false; readonly reason: string };

const HEADER = /^t=(\d{1,16}),v1=([0-9a-f]{64})$/;

/**
 * Checks the TM's signature on incoming branch calls: the HMAC over method, path and query, body and
 * timestamp; the timestamp within the window; and that the same signature was not accepted before.
 *
 * Replays are caught with a memory of the signatures accepted within the window, bounded by `maxRemembered`.
 * When it is full the oldest is forgotten, and from then on every call not newer than the forgotten one is
 * refused: a replay can never slip through a full memory, only calls already as old as the forgotten one
 * (which the TM, signing each attempt afresh, does not send) are refused early.
 */
export class BranchSignatureVerifier {
  private readonly keys: readonly (string | Uint8Array)[];
  private readonly toleranceMs: number;
  private readonly maxRemembered: number;
  private readonly now: () => number;
  /** Accepted signatures → their timestamp, in the order they were accepted. */
  private readonly seen = new Map<string, number>();
  /** Calls signed at or before this are refused: a signature from then may have been forgotten. */
  private floor = -Infinity;

  constructor(opts: VerifierOptions) {
    const keys: readonly (string | Uint8Array)[] =
      typeof opts.key === 'string' || opts.key instanceof Uint8Array ? [opts.key] : opts.key;
    if (keys.length === 0 || keys.some((k) => k.length === 0)) throw new Error('a branch signing key is required');
    this.keys = keys;
    this.toleranceMs = opts.toleranceMs ?? 5 * 60_000;
    this.maxRemembered = Math.max(1, opts.maxRemembered ?? 100_000);
    this.now = opts.now ?? Date.now;
  }

  /** How many accepted signatures are remembered now. */
  get remembered(): number {
    return this.seen.size;
  }

  /** Verifies one call given its `dtm-signature` header; an accepted call is remembered, so a second is refused. */
  verify(header: string | undefined, call: SignedCall): Verdict {
    if (!header) return { ok: false, reason: `no ${SIGNATURE_HEADER} header` };
    const m = HEADER.exec(header.trim());
    if (!m) return { ok: false, reason: `malformed ${SIGNATURE_HEADER} header` };
    const t = Number(m[1]);
    const given = Buffer.from(m[2]!, 'hex');
    const now = this.now();
    if (Math.abs(now - t) > this.toleranceMs) return { ok: false, reason: 'signature timestamp outside the window' };
    if (!this.keys.some((k) => timingSafeEqual(digest(k, t, call), given))) {
      return { ok: false, reason: 'signature does not match the call' };
    }
    this.forgetExpired(now);
    if (this.seen.has(m[2]!) || t <= this.floor) return { ok: false, reason: 'signature already used (replay)' };
    this.seen.set(m[2]!, t);
    if (this.seen.size > this.maxRemembered) {
      const [oldest, at] = this.seen.entries().next().value as [string, number];
      this.seen.delete(oldest);
      this.floor = Math.max(this.floor, at);
    }
    return { ok: true };
  }

  private forgetExpired(now: number): void {
    for (const [sig, t] of this.seen) {
      if (t + this.toleranceMs >= now) break;
      this.seen.delete(sig);
    }
  }
}
