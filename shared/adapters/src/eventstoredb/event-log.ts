import {
  BACKWARDS,
  END,
  FORWARDS,
  NO_STREAM as ESDB_NO_STREAM,
  START,
  StreamNotFoundError,
  WrongExpectedVersionError,
  jsonEvent,
  type EventStoreDBClient,
  type Position,
  type RecordedEvent,
} from '@eventstore/db-client';
import type { Gid, TopicEvent, TxEvent } from '@dtm-ts/domain';
import {
  NO_STREAM,
  VersionConflict,
  type EventFeed,
  type EventLog,
  type FeedCheckpoint,
  type FeedEntry,
  type TopicLog,
} from '@dtm-ts/ports';

/** Where the EventStoreDB adapters keep their streams. */
export interface EsdbLogOptions {
  /** Namespace of every stream name, so several deployments (or tests) can share one database. */
  readonly prefix: string;
}

/** Ids of topic streams (`topicStreamId`) start with this; `$` cannot start a gid. */
const TOPIC_ID = '$topic:';

/**
 * Stream names of one deployment: `<prefix>-tx-<gid>` per transaction, `<prefix>-topic-<name>` per topic.
 * (`$` starts EventStoreDB's system streams, so topic ids cannot be used as they are.)
 */
export class EsdbStreams {
  readonly txPrefix: string;
  readonly topicPrefix: string;

  constructor(readonly prefix: string) {
    this.txPrefix = `${prefix}-tx-`;
    this.topicPrefix = `${prefix}-topic-`;
  }

  /** The stream of a log id (a gid, or `$topic:<name>`). */
  streamOf(id: string): string {
    return id.startsWith(TOPIC_ID) ? this.topicPrefix + id.slice(TOPIC_ID.length) : this.txPrefix + id;
  }

  /** The log id of one of our streams; null for any other stream. */
  idOf(stream: string): string | null {
    if (stream.startsWith(this.txPrefix)) return stream.slice(this.txPrefix.length);
    if (stream.startsWith(this.topicPrefix)) return TOPIC_ID + stream.slice(this.topicPrefix.length);
    return null;
  }

  /** Stream-name prefixes of every stream of this deployment, for `$all` filters. */
  prefixes(): string[] {
    return [this.txPrefix, this.topicPrefix];
  }
}

/**
 * Metadata on every event we append: which append it belongs to (revision of its first event, and how many
 * events it has), so the feed can give one entry per append, as the port promises, from `$all`, which lists
 * single events.
 */
interface AppendMetadata {
  readonly appendFirst: number;
  readonly appendCount: number;
}

const appendMetadataOf = (e: RecordedEvent): AppendMetadata | null => {
  const m = e.metadata as Partial<AppendMetadata> | undefined;
  if (!m || typeof m !== 'object' || m instanceof Uint8Array) return null;
  const { appendFirst, appendCount } = m;
  return Number.isInteger(appendFirst) && Number.isInteger(appendCount) && (appendCount ?? 0) >= 1
    ? { appendFirst: appendFirst!, appendCount: appendCount! }
    : null;
};

/** A feed checkpoint is the `$all` position of the last event of an entry: `<commit>/<prepare>`. */
export const formatEsdbCheckpoint = (p: Position): FeedCheckpoint => `${p.commit}/${p.prepare}`;

const CHECKPOINT = /^(\d+)\/(\d+)$/;

/** The position of a checkpoint; null for `''` (the beginning). */
export const parseEsdbCheckpoint = (checkpoint: FeedCheckpoint): Position | null => {
  if (checkpoint === '') return null;
  const m = CHECKPOINT.exec(checkpoint);
  if (!m) throw new RangeError(`'${checkpoint}' is not an EventStoreDB feed checkpoint (<commit>/<prepare>)`);
  return { commit: BigInt(m[1]!), prepare: BigInt(m[2]!) };
};

/** Orders `$all` positions as the server does: by commit, then prepare. */
export const compareEsdbPositions = (a: Position, b: Position): number =>
  a.commit !== b.commit ? (a.commit < b.commit ? -1 : 1) : a.prepare === b.prepare ? 0 : a.prepare < b.prepare ? -1 : 1;

/** Our event as stored: the EventStoreDB event type is its `type`, the event data its `data`. */
const toTxEvent = (e: RecordedEvent): TxEvent => ({ type: e.type, data: e.data }) as TxEvent;

/**
 * Groups `$all` events of our streams back into appends. The server writes the events of one append together
 * (one transaction), so an append's events come one after another; an append cut by the end of a read stays
 * open until the next read completes it.
 */
export class EsdbEntryAssembler {
  private open: { id: string; meta: AppendMetadata; events: TxEvent[]; position: Position } | null = null;

  constructor(private readonly streams: EsdbStreams) {}

  /** Takes the next event of `$all`; returns the entries it completes (none, one, or two when a broken one is cut). */
  push(e: RecordedEvent): FeedEntry[] {
    const id = this.streams.idOf(e.streamId);
    if (id === null || !e.position) return [];
    const out: FeedEntry[] = [];
    const revision = Number(e.revision);
    const open = this.open;
    if (open && (open.id !== id || revision !== open.meta.appendFirst + open.events.length)) {
      // An append that never completed (written by something else than this adapter): give what it has.
      out.push(this.close(open));
    }
    const meta = appendMetadataOf(e);
    const current =
      this.open ??
      (this.open = {
        id,
        meta: meta && meta.appendFirst === revision ? meta : { appendFirst: revision, appendCount: 1 },
        events: [],
        position: e.position,
      });
    current.events.push(toTxEvent(e));
    current.position = e.position;
    if (current.events.length >= current.meta.appendCount) out.push(this.close(current));
    return out;
  }

  private close(open: NonNullable<EsdbEntryAssembler['open']>): FeedEntry {
    this.open = null;
    return {
      gid: open.id,
      firstRevision: open.meta.appendFirst,
      events: open.events,
      checkpoint: formatEsdbCheckpoint(open.position),
    };
  }
}

/** Events per `$all` read while paging the feed. */
const SCAN_CHUNK = 1_000;

/**
 * Event log on EventStoreDB: one stream per gid (`<prefix>-tx-<gid>`), appended with an expected revision.
 * The feed is `$all`, read forwards and grouped back into appends; its checkpoints are `$all` positions.
 */
export class EsdbEventLog implements EventLog, EventFeed {
  readonly streams: EsdbStreams;

  constructor(
    private readonly client: EventStoreDBClient,
    options: EsdbLogOptions,
  ) {
    this.streams = new EsdbStreams(options.prefix);
  }

  async read(id: Gid): Promise<{ events: TxEvent[]; version: number }> {
    const events: TxEvent[] = [];
    try {
      for await (const resolved of this.client.readStream(this.streams.streamOf(id), {
        direction: FORWARDS,
        fromRevision: START,
      })) {
        if (resolved.event) events.push(toTxEvent(resolved.event));
      }
    } catch (err) {
      if (err instanceof StreamNotFoundError) return { events: [], version: NO_STREAM };
      throw err;
    }
    return { events, version: events.length - 1 };
  }

  async append(id: Gid, events: readonly TxEvent[], expected: number): Promise<number> {
    if (!Number.isInteger(expected) || expected < NO_STREAM) {
      throw new RangeError(`expected revision must be an integer ≥ ${NO_STREAM}, got ${expected}`);
    }
    const stream = this.streams.streamOf(id);
    if (events.length === 0) {
      // Nothing to write: only check the revision, as the Redis log does.
      const actual = await this.lastRevision(stream);
      if (actual !== expected) throw new VersionConflict(id, expected, actual);
      return actual;
    }
    const meta: AppendMetadata = { appendFirst: expected + 1, appendCount: events.length };
    try {
      const result = await this.client.appendToStream(
        stream,
        events.map((e) => jsonEvent({ type: e.type, data: e.data, metadata: meta })),
        { expectedRevision: expected === NO_STREAM ? ESDB_NO_STREAM : BigInt(expected) },
      );
      return Number(result.nextExpectedRevision);
    } catch (err) {
      if (err instanceof WrongExpectedVersionError) {
        const actual = typeof err.actualVersion === 'bigint' ? Number(err.actualVersion) : NO_STREAM;
        throw new VersionConflict(id, expected, actual);
      }
      throw err;
    }
  }

  /**
   * Reads up to `limit` appends of our streams after `from`, in `$all` order. `$all` holds every stream of the
   * database (system streams, other deployments): they are skipped here, so a page may scan far more events
   * than it returns. Events at or before `from` are skipped too, so resuming is exact whether the server reads
   * a position inclusively or not.
   */
  async readPage(from: FeedCheckpoint, limit: number): Promise<FeedEntry[]> {
    if (limit <= 0) return [];
    let after = parseEsdbCheckpoint(from);
    const assembler = new EsdbEntryAssembler(this.streams);
    const page: FeedEntry[] = [];
    for (;;) {
      let read = 0;
      const chunk = this.client.readAll({ direction: FORWARDS, fromPosition: after ?? START, maxCount: SCAN_CHUNK });
      try {
        for await (const resolved of chunk) {
          read++;
          const e = resolved.event;
          if (!e?.position || (after && compareEsdbPositions(e.position, after) <= 0)) continue;
          after = e.position;
          page.push(...assembler.push(e));
          // An append opened after the last complete one is read again by the next page.
          if (page.length >= limit) {
            read = -1;
            return page.slice(0, limit);
          }
        }
      } finally {
        // Leaving early: end the call, or the server would go on sending the rest of the chunk.
        if (read === -1) await chunk.cancel();
      }
      // A short read is the end of `$all`; an append still open there is not complete yet: leave it for later.
      if (read < SCAN_CHUNK) return page;
    }
  }

  private async lastRevision(stream: string): Promise<number> {
    try {
      for await (const resolved of this.client.readStream(stream, {
        direction: BACKWARDS,
        fromRevision: END,
        maxCount: 1,
      })) {
        if (resolved.event) return Number(resolved.event.revision);
      }
      return NO_STREAM;
    } catch (err) {
      if (err instanceof StreamNotFoundError) return NO_STREAM;
      throw err;
    }
  }
}

/** Topics live in the same database as transactions, one stream each (`<prefix>-topic-<name>`). */
export const esdbTopicLog = (log: EsdbEventLog): TopicLog => ({
  read: async (id) => {
    const { events, version } = await log.read(id);
    return { events: events as unknown as TopicEvent[], version };
  },
  append: (id, events, expected) => log.append(id, events as unknown as TxEvent[], expected),
});
