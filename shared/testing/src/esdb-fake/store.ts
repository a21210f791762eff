/** A position in `$all`, ordered by commit, then prepare (as EventStoreDB orders its transaction log). */
export interface LogPosition {
  readonly commit: bigint;
  readonly prepare: bigint;
}

export const comparePositions = (a: LogPosition, b: LogPosition): number =>
  a.commit !== b.commit ? (a.commit < b.commit ? -1 : 1) : a.prepare === b.prepare ? 0 : a.prepare < b.prepare ? -1 : 1;

/** An event as the fake stores it: what was proposed, plus where and when it was written. */
export interface StoredEvent {
  readonly stream: string;
  readonly revision: bigint;
  readonly id: string;
  readonly type: string;
  readonly contentType: string;
  readonly data: Uint8Array;
  readonly customMetadata: Uint8Array;
  /** .NET ticks (100 ns) since the Unix epoch, as the server sends `created`. */
  readonly created: bigint;
  readonly position: LogPosition;
}

export interface ProposedEvent {
  readonly id: string;
  readonly type: string;
  readonly contentType: string;
  readonly data: Uint8Array;
  readonly customMetadata: Uint8Array;
}

export type ExpectedRevision =
  | { readonly kind: 'any' }
  | { readonly kind: 'no_stream' }
  | { readonly kind: 'stream_exists' }
  | { readonly kind: 'revision'; readonly revision: bigint };

export type AppendOutcome =
  | { readonly ok: true; readonly revision: bigint | null; readonly position: LogPosition | null }
  | { readonly ok: false; readonly reason: 'wrong-expected-version'; readonly current: bigint | null }
  | { readonly ok: false; readonly reason: 'too-large'; readonly maxAppendSize: number };

/** Bytes a record header takes in the fake's log: positions grow roughly like the real server's. */
const RECORD_OVERHEAD = 96n;

/**
 * The fake's storage: one in-memory transaction log (`$all`), indexed by stream. Appends are checked and
 * written within one synchronous call, so they are atomic and serialized as on the real server's single writer.
 */
export class FakeStore {
  /** Every event in `$all` order. */
  readonly all: StoredEvent[] = [];
  private readonly streams = new Map<string, StoredEvent[]>();
  private nextPosition = 0n;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly maxAppendSize: number) {}

  stream(name: string): readonly StoredEvent[] | undefined {
    return this.streams.get(name);
  }

  lastRevision(name: string): bigint | null {
    const events = this.streams.get(name);
    return events?.length ? BigInt(events.length - 1) : null;
  }

  /**
   * Writes `events` to `stream` if it is where `expected` says. As on the real server, every event of one
   * append gets the same commit position (that of the commit record written after its prepares), so they sit
   * together in `$all`; an empty append only checks the expected revision.
   */
  append(
    stream: string,
    expected: ExpectedRevision,
    events: readonly ProposedEvent[],
    now = Date.now(),
  ): AppendOutcome {
    const current = this.lastRevision(stream);
    const fits =
      expected.kind === 'any' ||
      (expected.kind === 'no_stream' && current === null) ||
      (expected.kind === 'stream_exists' && current !== null) ||
      (expected.kind === 'revision' && current === expected.revision);
    if (!fits) return { ok: false, reason: 'wrong-expected-version', current };
    const size = events.reduce((n, e) => n + e.data.length + e.customMetadata.length, 0);
    if (size > this.maxAppendSize) return { ok: false, reason: 'too-large', maxAppendSize: this.maxAppendSize };
    if (events.length === 0) return { ok: true, revision: current, position: null };

    const prepares: bigint[] = [];
    for (const e of events) {
      prepares.push(this.nextPosition);
      this.nextPosition += RECORD_OVERHEAD + BigInt(e.data.length + e.customMetadata.length);
    }
    const commit = this.nextPosition;
    this.nextPosition += RECORD_OVERHEAD;
    const created = BigInt(now) * 10_000n;
    let list = this.streams.get(stream);
    if (!list) {
      list = [];
      this.streams.set(stream, list);
    }
    let revision = current ?? -1n;
    for (const [i, e] of events.entries()) {
      revision += 1n;
      const stored: StoredEvent = {
        ...e,
        stream,
        revision,
        created,
        position: { commit, prepare: prepares[i] ?? commit },
      };
      list.push(stored);
      this.all.push(stored);
    }
    for (const wake of [...this.listeners]) wake();
    const last = this.all.at(-1);
    return { ok: true, revision, position: last ? last.position : null };
  }

  /** Index in `all` of the first event at `position` or after it. */
  indexAtOrAfter(position: LogPosition): number {
    let lo = 0;
    let hi = this.all.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (comparePositions(this.all[mid]!.position, position) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Index in `all` of the first event after `position`. */
  indexAfter(position: LogPosition): number {
    let lo = 0;
    let hi = this.all.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (comparePositions(this.all[mid]!.position, position) <= 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Resolves at the next append (or when `signal` aborts). */
  nextAppend(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.listeners.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      if (signal.aborted) return resolve();
      this.listeners.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
