import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { expect } from 'vitest';

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
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ topic, partition, message }) => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(message.headers ?? {})) if (v !== undefined) headers[k] = v.toString();
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
      const deadline = Date.now() + timeoutMs;
      while (!ready()) {
        if (Date.now() > deadline) expect.fail(`${what}: not after ${timeoutMs} ms (${records.length} records seen)`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    stop: () => consumer.disconnect(),
  };
};

/** How many records beyond the first each (gid, branch id) got. */
export const countDuplicates = (records: readonly CollectedRecord[]): { distinct: number; duplicates: number } => {
  const seen = new Set(records.map((r) => `${r.headers['dtm-gid']}/${r.headers['dtm-branch-id']}`));
  return { distinct: seen.size, duplicates: records.length - seen.size };
};
