import type {
  BranchCall,
  BranchOutcome,
  Gid,
  GlobalStatus,
  GlobalTransaction,
  Protocol,
  TopicEvent,
  TxEvent,
} from '@dtm-ts/domain';

/** An event as stored: its revision in its stream (0-based) and when it was appended. */
export interface RecordedEvent {
  readonly revision: number;
  readonly event: TxEvent;
}

/** The stream revision nobody has written yet: append with it to create a stream. */
export const NO_STREAM = -1;

/** Rejected append: someone else appended first. Re-read, re-decide, never overwrite. */
export class VersionConflict extends Error {
  override readonly name = 'VersionConflict';
  constructor(
    readonly gid: Gid,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`stream of '${gid}' is at revision ${actual}, expected ${expected}`);
  }
}

/** Append-only streams of events, one per id. */
export interface StreamLog<E> {
  /** All events of one stream, and the revision of the last one (NO_STREAM when none). */
  read(id: string): Promise<{ events: E[]; version: number }>;
  /**
   * Appends atomically, only if the stream is at `expected` (NO_STREAM for a new stream).
   * Rejects with VersionConflict otherwise. Resolves to the revision of the last appended event.
   */
  append(id: string, events: readonly E[], expected: number): Promise<number>;
}

/** Append-only history of every global transaction: one stream per gid. */
export type EventLog = StreamLog<TxEvent>;

/**
 * A log that keeps snapshots of folded states, so a transaction that retried for days is read in constant
 * time: the snapshot plus the events after it, folded. Equal to folding the whole stream.
 */
export interface StateLog {
  readState(gid: Gid): Promise<{ state: GlobalTransaction; version: number }>;
}

/**
 * Every stream a log holds, in pages of ids, in no particular order: for audits and rebuilds, which cannot
 * rely on the feed (it is trimmed once projected). `archived`: also the transactions moved to the archive.
 */
export interface StreamCatalog {
  streamIds(opts: { archived: boolean }): AsyncIterable<readonly string[]>;
}

/** What the read model holds for a transaction after an append, as its appender computed it (see ProjectingLog). */
export interface Projection {
  readonly summary: TransactionSummary;
  /** When the transaction next needs a driver (the recovery sweep's wake time); null once finished. */
  readonly wakeAt: number | null;
  /** A finished transaction leaves the read model then (retention; the log keeps it); null: kept. */
  readonly expireAt: number | null;
  /** The transaction finished under the appender's pass lease: the lease goes with the append. */
  readonly endLease?: boolean;
  /**
   * The append starts the stream (expected: no stream) and the appender drives the transaction at once: its pass
   * lease is taken with the append, as `PassLease.acquire` would take it, instead of in a round trip of its own.
   */
  readonly takeLease?: { readonly token: string; readonly ttlMs: number };
}

/**
 * A log that writes the read model together with an append, atomically, for a driver that holds the folded state
 * anyway: the projector then has nothing left to do for that append (no feed entry, no re-read, no second write).
 */
export interface ProjectingLog {
  /**
   * `append`, with `projection` written to the read model in the same atomic step. With null, the append is recorded
   * nowhere yet: only for a driver that goes on at once to its next append (which records it), so that a crash in
   * between leaves the read model one version behind, with the wake time that brings the recovery sweep.
   */
  appendProjected(
    gid: Gid,
    events: readonly TxEvent[],
    expected: number,
    projection: Projection | null,
  ): Promise<number>;
}

/** Topics and their subscribers, one stream per topic (`topicStreamId`). */
export type TopicLog = StreamLog<TopicEvent>;

/** A position in the global feed, opaque to callers; `''` is the beginning. */
export type FeedCheckpoint = string;

/** One append, as the global feed reports it. */
export interface FeedEntry {
  readonly gid: Gid;
  /** Revision of the first event of this append, and the events themselves. */
  readonly firstRevision: number;
  readonly events: readonly TxEvent[];
  /** Position after this entry: pass it back to resume. */
  readonly checkpoint: FeedCheckpoint;
}

/** The whole log in append order (per partition), for projections, recovery and audit replay. */
export interface EventFeed {
  /** Reads up to `limit` entries after `from`; an empty page means caught up. */
  readPage(from: FeedCheckpoint, limit: number): Promise<FeedEntry[]>;
}

/** A live consumer of the feed, at least once: the projector runs on one, whichever log is configured. */
export interface FeedSubscription {
  /** Starts delivering appends to `handler`, in feed order, until `stop`. A rejected batch comes again. */
  start(handler: (entries: FeedEntry[]) => Promise<void>): Promise<void>;
  /** Ends delivery; resolves once a running handler finished and its progress was saved. */
  stop(): Promise<void>;
}

/** Where a subscriber keeps how far it got, so that it resumes there after a restart. */
export interface CheckpointStore {
  /** The last checkpoint saved; null when none was. */
  load(): Promise<FeedCheckpoint | null>;
  /** Records that everything up to `checkpoint` was handled. */
  save(checkpoint: FeedCheckpoint): Promise<void>;
}

/** The `/all` and recovery view of a transaction, derived from its events. */
export interface TransactionSummary {
  readonly gid: Gid;
  readonly transType: string;
  readonly status: GlobalStatus;
  readonly createTime: number;
  /** The transaction as `/query` and `/all` print it. */
  readonly record: Readonly<Record<string, unknown>>;
}

export interface ListQuery {
  readonly position: string;
  readonly limit: number;
  readonly status?: string;
  readonly transType?: string;
  readonly createTimeStart?: number;
  readonly createTimeEnd?: number;
}

/** Queryable projection of the log. Rebuildable: dropping it and replaying the feed gives the same answers. */
export interface ReadModel {
  /**
   * Stores a projection of `gid` at `version`, unless a newer one is already stored. `wakeAt` null:
   * finished. `expireAt`: a finished transaction leaves the read model then (retention; the log keeps it).
   */
  put(summary: TransactionSummary, version: number, wakeAt: number | null, expireAt?: number | null): Promise<void>;
  get(gid: Gid): Promise<TransactionSummary | null>;
  /** Newest first, `next` is '' on the last page. */
  list(q: ListQuery): Promise<{ items: TransactionSummary[]; next: string }>;
  /** Unfinished transactions that should have been driven before `before` (epoch ms). */
  overdue(before: number, limit: number): Promise<{ gid: Gid; version: number; wakeAt: number }[]>;
  /**
   * The recovery sweep re-queued these overdue transactions: look at them again at `until` (epoch ms), unless a
   * newer projection moves their wake time first. Keeps a set of ever-overdue transactions from hiding the rest.
   */
  postpone(overdue: readonly { gid: Gid; wakeAt: number }[], until: number): Promise<void>;
  /** How many transactions are unfinished. */
  unfinishedCount(): Promise<number>;
  /** Unfinished transactions that will not be driven before `after` (epoch ms): long back-offs. */
  scheduledAfter(after: number, limit: number): Promise<{ gid: Gid; version: number; wakeAt: number }[]>;
  /**
   * Drops what is left of transactions that retention removed, among those created before `createdBefore`
   * (epoch ms). Returns how many it dropped.
   */
  compact(createdBefore: number): Promise<number>;
}

/** A pass job: the queue's request for one pass over one transaction. */
export interface PassJobData {
  readonly gid: Gid;
  /** When the pass was asked for (epoch ms): what was due then is due when it runs (see `Driver.runPass`). */
  readonly at: number;
  /** W3C traceparent of whoever asked for the pass; `''` when known to have none. */
  readonly trace?: string;
}

/** Asks for passes: work for the workers, one pass job per pass. */
export interface PassScheduler {
  /**
   * Asks for a pass over `gid` at `at` (epoch ms; now or earlier: at once). `key` makes the request
   * idempotent: a second request with the same gid and key while the first is pending is dropped.
   */
  schedule(gid: Gid, at: number, key: string, trace?: string): Promise<void>;
}

/** Hands pass jobs to a worker. */
export interface PassJobSource {
  /**
   * Runs `handler` on every pass job as it falls due, several at once, until `close`. A job whose handler
   * rejects is tried again later; the job of a worker that died is handed to another after its lock lapses.
   */
  consume(handler: (job: PassJobData) => Promise<void>): { close(): Promise<void> };
}

/**
 * Who drives a transaction now (DESIGN invariant 4: one driver at a time, correct even with two).
 * A lease lapses by itself, so a dead driver never blocks the transaction for longer than its TTL.
 */
export interface PassLease {
  /** Takes the lease for `ttlMs`; when someone else holds it, says for how much longer. */
  acquire(gid: Gid, ttlMs: number): Promise<{ token: string } | { heldForMs: number }>;
  /** Extends it; false when it lapsed and was lost. */
  renew(gid: Gid, token: string, ttlMs: number): Promise<boolean>;
  release(gid: Gid, token: string): Promise<void>;
}

export interface BranchRequest extends BranchCall {
  readonly gid: Gid;
  readonly transType: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  /** The transaction's protocol (absent: http): how `data` is encoded, and how a non-http url is called. */
  readonly protocol?: Protocol;
}

/** Calls one branch operation of an RM. Never throws: transport trouble is an `error` outcome. */
export interface BranchTransport {
  call(req: BranchRequest): Promise<BranchOutcome>;
}

export interface Clock {
  now(): number;
}

/** One message for a {@link MessageBus}, as a committed msg step becomes it. */
export interface BusMessage {
  readonly topic: string;
  /** Messages with the same key stay in order (Kafka: one partition). The TM uses the gid. */
  readonly key: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Exactly the bytes to deliver. */
  readonly value: Uint8Array;
}

/**
 * Where committed two-phase messages go when a step names a topic instead of an HTTP consumer: a durable log of
 * messages that consumers read on their own (Kafka).
 */
export interface MessageBus {
  /**
   * Resolves once the bus acknowledged `message` durably (Kafka: every in-sync replica, acks = all).
   * Rejects on any failure, or when no acknowledgement came within `timeoutMs`. A message whose
   * publish rejected may still have been stored: delivery through a bus is at-least-once.
   */
  publish(message: BusMessage, opts: { readonly timeoutMs: number }): Promise<void>;
  /** Stops taking messages, sends what is queued, waits for the answers, then disconnects. */
  close(): Promise<void>;
}

export const systemClock: Clock = { now: () => Date.now() };
