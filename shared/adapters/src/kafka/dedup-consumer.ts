/**
 * A consumer helper for the records dtm-ts produces (README, "Kafka delivery"). It depends on kafkajs
 * only, so it can be copied into a service as it is.
 *
 * Delivery is at-least-once: the TM produces a record again when it did not see the broker's
 * acknowledgement (broker outage, timeout, crash), and Kafka redelivers what a consumer handled but did
 * not commit. Every record names its transaction and branch in headers; this helper handles each
 * (gid, branch id) once and drops the rest.
 */
import type { Consumer, EachMessagePayload, KafkaMessage } from 'kafkajs';

/** A record produced by dtm-ts for one msg step. */
export interface DtmRecord {
  readonly gid: string;
  readonly branchId: string;
  readonly transType: string;
  /** W3C trace context of the delivery, when the TM traces. */
  readonly traceparent?: string;
  /** The step's payload, byte for byte. */
  readonly value: Buffer;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  /** Every header, as UTF-8 text. */
  readonly headers: Readonly<Record<string, string>>;
}

const headerText = (v: Buffer | string | (Buffer | string)[] | undefined): string | undefined => {
  const one = Array.isArray(v) ? v[v.length - 1] : v;
  return one === undefined ? undefined : one.toString();
};

/** Reads the dtm-ts headers of a record; null when it has none (not produced by the TM). */
export const dtmRecordOf = (topic: string, partition: number, message: KafkaMessage): DtmRecord | null => {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(message.headers ?? {})) {
    const text = headerText(v);
    if (text !== undefined) headers[k] = text;
  }
  const gid = headers['dtm-gid'];
  const branchId = headers['dtm-branch-id'];
  if (!gid || !branchId) return null;
  return {
    gid,
    branchId,
    transType: headers['dtm-trans-type'] ?? 'msg',
    traceparent: headers.traceparent,
    value: message.value ?? Buffer.alloc(0),
    topic,
    partition,
    offset: message.offset,
    headers,
  };
};

/** The identity of a delivery, unambiguous whatever characters gid and branch id hold: `["g1","01"]`. */
export const dedupKey = (r: Pick<DtmRecord, 'gid' | 'branchId'>): string => JSON.stringify([r.gid, r.branchId]);

/**
 * Remembers which deliveries were handled. Use a durable one (a table with a unique key, written in the
 * same database transaction as the effect) to drop redeliveries across restarts and rebalances too.
 */
export interface DedupStore {
  /** Whether `key` was handled already. */
  has(key: string): boolean | Promise<boolean>;
  /** Records that `key` was handled. */
  add(key: string): void | Promise<void>;
}

/** The newest `capacity` keys in memory: drops the TM's own duplicates, which come within its retry window. */
export class MemoryDedupStore implements DedupStore {
  private readonly keys = new Set<string>();

  constructor(private readonly capacity = 100_000) {}

  has(key: string): boolean {
    return this.keys.has(key);
  }

  add(key: string): void {
    this.keys.add(key);
    // A Set iterates in insertion order: the first key is the oldest.
    if (this.keys.size > this.capacity) this.keys.delete(this.keys.values().next().value!);
  }
}

/** Options of {@link runDedupConsumer}. */
export interface DedupConsumerOptions {
  /** A kafkajs consumer, not yet connected; its group id is the caller's. */
  readonly consumer: Consumer;
  readonly topics: readonly (string | RegExp)[];
  /** Where a new group starts (default false: only new records). */
  readonly fromBeginning?: boolean;
  /** Default: a {@link MemoryDedupStore}. */
  readonly store?: DedupStore;
  /** Partitions handled at once (default 1). One gid always maps to one partition, so its records stay in order. */
  readonly partitionsConsumedConcurrently?: number;
  /**
   * Handles one delivery. If it throws, the record is not marked and kafkajs delivers it again (and
   * restarts the consumer after its retries); so make it safe to run twice, or dedup durably.
   */
  handle(record: DtmRecord): Promise<void>;
  /** Told about each duplicate dropped. */
  onDuplicate?(record: DtmRecord): void;
  /** Records without dtm-ts headers. Default: skipped, counted in `stats.foreign`. */
  onForeign?(payload: EachMessagePayload): Promise<void>;
}

/** A running consumer and what it did so far. */
export interface DedupConsumer {
  readonly stats: { readonly handled: number; readonly duplicates: number; readonly foreign: number };
  /** Disconnects (kafkajs commits the offsets of what was handled). */
  stop(): Promise<void>;
}

/** Connects, subscribes and runs `handle` once per (gid, branch id). */
export const runDedupConsumer = async (opts: DedupConsumerOptions): Promise<DedupConsumer> => {
  const { consumer } = opts;
  const store = opts.store ?? new MemoryDedupStore();
  const stats = { handled: 0, duplicates: 0, foreign: 0 };
  await consumer.connect();
  await consumer.subscribe({ topics: [...opts.topics], fromBeginning: opts.fromBeginning ?? false });
  await consumer.run({
    partitionsConsumedConcurrently: opts.partitionsConsumedConcurrently ?? 1,
    eachMessage: async (payload) => {
      const record = dtmRecordOf(payload.topic, payload.partition, payload.message);
      if (!record) {
        stats.foreign++;
        if (opts.onForeign) await opts.onForeign(payload);
        return;
      }
      const key = dedupKey(record);
      if (await store.has(key)) {
        stats.duplicates++;
        opts.onDuplicate?.(record);
        return;
      }
      await opts.handle(record);
      await store.add(key);
      stats.handled++;
    },
  });
  return { stats, stop: () => consumer.disconnect() };
};
