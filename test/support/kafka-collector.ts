import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, Partitioners, type Consumer, type Producer } from 'kafkajs';
import { waitFor } from './wait';

/** A record as a test consumer received it. */
export interface CollectedRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  readonly value: Buffer;
  readonly headers: Readonly<Record<string, string>>;
  /** The record's own timestamp (producer create time), epoch ms. */
  readonly timestamp: number;
  /** When this consumer received it, epoch ms. */
  readonly receivedAt: number;
}

/** A real kafkajs consumer group that keeps every record it receives. */
export interface KafkaCollector {
  readonly records: CollectedRecord[];
  /** Records whose `dtm-gid` header is `gid`, in arrival order. */
  of(gid: string): CollectedRecord[];
  /** Polls until `ready()` holds, failing the test with `what` after `timeoutMs`. */
  waitUntil(ready: () => boolean, what: string, timeoutMs?: number): Promise<void>;
  /**
   * The live marker before a check of absence: produces a marker record keyed `key` to `topic` (the TM's
   * partitioner, so the same partition as the TM's records keyed `key`) and waits until this consumer got
   * it. Every record with that key produced before it has then been received. Markers are not in `records`.
   */
  flush(topic: string, key: string): Promise<void>;
  stop(): Promise<void>;
}

/** Consumer settings that notice a broker outage and rejoin within a few seconds (defaults take 30 s). */
export const testConsumer = (brokers: readonly string[], groupId: string): Consumer =>
  new Kafka({
    clientId: groupId,
    brokers: [...brokers],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    retry: { retries: 1_000, initialRetryTime: 100, maxRetryTime: 1_000 },
  }).consumer({ groupId, sessionTimeout: 6_000, heartbeatInterval: 500, maxWaitTimeInMs: 100 });

/**
 * Joins a fresh consumer group on `topics` (created on first use), reading from the beginning; resolves
 * once the group has its partitions.
 */
export const startKafkaCollector = async (brokers: readonly string[], topics: string[]): Promise<KafkaCollector> => {
  const consumer = testConsumer(brokers, `collector-${randomUUID().slice(0, 8)}`);
  const records: CollectedRecord[] = [];
  let producer: Promise<Producer> | undefined;
  /** Marker records seen (kept apart from `records`). */
  const markers = new Set<string>();
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ topic, partition, message }) => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(message.headers ?? {})) if (v !== undefined) headers[k] = v.toString();
      if (headers['test-marker'] !== undefined) {
        markers.add(headers['test-marker']);
        return;
      }
      records.push({
        topic,
        partition,
        offset: message.offset,
        key: message.key?.toString('utf8') ?? null,
        value: message.value ?? Buffer.alloc(0),
        headers,
        timestamp: Number(message.timestamp),
        receivedAt: Date.now(),
      });
    },
  });
  await joined;
  return {
    records,
    of: (gid) => records.filter((r) => r.headers['dtm-gid'] === gid),
    async waitUntil(ready, what, timeoutMs = 20_000) {
      await waitFor(ready, () => `${what} (${records.length} records seen)`, { timeout: timeoutMs });
    },
    async flush(topic, key) {
      producer ??= connectedProducer(brokers);
      const p = await producer;
      const marker = randomUUID();
      await p.send({ topic, acks: -1, messages: [{ key, value: marker, headers: { 'test-marker': marker } }] });
      await waitFor(() => markers.has(marker), `marker record on ${topic}`);
    },
    stop: async () => {
      await (await producer)?.disconnect();
      await consumer.disconnect();
    },
  };
};

const connectedProducer = async (brokers: readonly string[]): Promise<Producer> => {
  const producer = new Kafka({
    clientId: 'collector-marker',
    brokers: [...brokers],
    logLevel: logLevel.NOTHING,
  }).producer({
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  return producer;
};

/** How many records beyond the first each (gid, branch id) got. */
export const countDuplicates = (records: readonly CollectedRecord[]): { distinct: number; duplicates: number } => {
  const seen = new Set(records.map((r) => `${r.headers['dtm-gid']}/${r.headers['dtm-branch-id']}`));
  return { distinct: seen.size, duplicates: records.length - seen.size };
};
