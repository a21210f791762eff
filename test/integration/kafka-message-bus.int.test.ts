import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KafkaMessageBus } from '@dtm-ts/adapters';
import { startKafkaMock, type KafkaMock } from '@dtm-ts/testing';
import { startKafkaCollector } from '../support/kafka-collector';

let kafka: KafkaMock;

beforeAll(async () => {
  kafka = await startKafkaMock();
});
afterAll(async () => {
  await kafka?.stop();
});

const run = randomUUID().slice(0, 8);
const message = (topic: string, key: string, value: string) => ({ topic, key, headers: {}, value: Buffer.from(value) });

/** Partition → leader broker id of `topic`, as another client sees it now. */
const leaders = async (topic: string): Promise<string> => {
  const admin = new Kafka({ clientId: 'probe', brokers: [...kafka.brokers], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const md = await admin.fetchTopicMetadata({ topics: [topic] });
    return md.topics[0]!.partitions.map((p) => `${p.partitionId}:${p.leader}`)
      .sort()
      .join(' ');
  } finally {
    await admin.disconnect();
  }
};

describe('kafka message bus', () => {
  it('when partition leaders move under a batch, then every record acknowledged is stored (kafkajs would lose some)', async () => {
    const bus = new KafkaMessageBus({ brokers: kafka.brokers, retries: 5 });
    let moved = 0;
    try {
      for (let round = 0; round < 6 && moved < 2; round++) {
        const topic = `leaders-${run}-${round}`;
        const publish = (values: string[]) =>
          Promise.all(values.map((v) => bus.publish(message(topic, v, v), { timeoutMs: 10_000 })));
        // The bus learns the topic's leaders; the cluster restarts, and another client creates the topic
        // again with leaders of the new cluster's choosing: the bus's metadata is now partly stale.
        await publish(Array.from({ length: 8 }, (_, i) => `warm-${i}`));
        const before = await leaders(topic);
        await kafka.kill();
        await kafka.start();
        if ((await leaders(topic)) !== before) moved++;
        const values = Array.from({ length: 40 }, (_, i) => `r${round}-${i}`);
        await publish(values);
        // The restarted cluster has only this round's records; check them before the next restart.
        const collector = await startKafkaCollector(kafka.brokers, [topic]);
        try {
          const stored = () => new Set(collector.records.map((r) => r.value.toString()));
          await collector
            .waitUntil(() => values.every((v) => stored().has(v)), 'every acknowledged record', 5_000)
            .catch(() => undefined);
          expect(
            values.filter((v) => !stored().has(v)),
            `round ${round}, leaders ${before} → now`,
          ).toEqual([]);
        } finally {
          await collector.stop();
        }
      }
    } finally {
      await bus.close();
    }
    expect(moved, 'the mock never moved a leader: the scenario did not happen').toBeGreaterThan(0);
  });

  it('when closed with records queued, then they are sent and acknowledged before it disconnects', async () => {
    const topic = `close-${run}`;
    const bus = new KafkaMessageBus({ brokers: kafka.brokers });
    const values = Array.from({ length: 300 }, (_, i) => `c${i}`);
    const published = values.map((v) => bus.publish(message(topic, v, v), { timeoutMs: 10_000 }));
    await bus.close();
    const results = await Promise.allSettled(published);
    expect(results.filter((r) => r.status !== 'fulfilled')).toEqual([]);
    await expect(bus.publish(message(topic, 'late', 'late'), { timeoutMs: 1_000 })).rejects.toThrow(/closed/);
    const collector = await startKafkaCollector(kafka.brokers, [topic]);
    try {
      await collector.waitUntil(() => new Set(collector.records.map((r) => r.key)).size === 300, '300 records');
    } finally {
      await collector.stop();
    }
  });

  it('when the brokers cannot be reached, then a publish fails within its timeout instead of hanging', async () => {
    const bus = new KafkaMessageBus({ brokers: kafka.brokers });
    await bus.publish(message(`down-${run}`, 'k', 'first'), { timeoutMs: 10_000 });
    await kafka.cut();
    try {
      const t0 = Date.now();
      await expect(bus.publish(message(`down-${run}`, 'k', 'second'), { timeoutMs: 1_500 })).rejects.toThrow();
      expect(Date.now() - t0).toBeLessThan(2_500);
    } finally {
      await kafka.restore();
      await bus.close();
    }
  });
});
