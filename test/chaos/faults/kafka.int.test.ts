import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { KafkaMessageBus } from '@dtm-ts/adapters';
import { startKafkaCollector, type KafkaCollector } from '../../support/kafka-collector';
import { pause } from '../../support/wait';
import { startRestartableKafka, type RestartableKafka } from './kafka';

const run = randomUUID().slice(0, 8);

/** Publishes `id` through the TM's own producer, retrying as the TM would (a failed publish is retried later). */
const publishUntilAcked = async (
  bus: KafkaMessageBus,
  topic: string,
  id: string,
  onFailure: () => void = () => undefined,
): Promise<number> => {
  for (let attempt = 1; ; attempt++) {
    try {
      await bus.publish({ topic, key: id, headers: { 'dtm-gid': id }, value: Buffer.from(id) }, { timeoutMs: 5_000 });
      return attempt;
    } catch (err) {
      onFailure();
      if (attempt >= 60) throw err;
      await pause(250);
    }
  }
};

describe('restartable Kafka mock', () => {
  let kafka: RestartableKafka;
  let bus: KafkaMessageBus;
  let plain: Producer;

  beforeAll(async () => {
    kafka = await startRestartableKafka();
    bus = new KafkaMessageBus({ brokers: kafka.brokerList, allowAutoTopicCreation: true });
    plain = new Kafka({
      brokers: [...kafka.brokerList],
      logLevel: logLevel.NOTHING,
      connectionTimeout: 1_000,
      retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1_000 },
    }).producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await plain.connect();
  });
  afterAll(async () => {
    await plain?.disconnect();
    await bus?.close();
    await kafka?.stop();
  });

  it('keeps its addresses across a restart; producers connected before it deliver again after it; the data is gone', async () => {
    const topic = `restart-${run}`;
    expect(kafka.brokers).toBe(kafka.brokerList.join(','));
    await publishUntilAcked(bus, topic, 'before-1');
    await plain.send({ topic, messages: [{ key: 'before-2', value: 'before-2', headers: { 'dtm-gid': 'before-2' } }] });

    await kafka.restart();
    expect(kafka.restarts).toBe(1);

    // Both producers were connected to the old cluster: their first sends may fail, then they must get through.
    await publishUntilAcked(bus, topic, 'after-1');
    await plain.send({ topic, messages: [{ key: 'after-2', value: 'after-2', headers: { 'dtm-gid': 'after-2' } }] });

    const collector: KafkaCollector = await startKafkaCollector(kafka.brokerList, [topic]);
    try {
      await collector.waitUntil(
        () => collector.of('after-1').length === 1 && collector.of('after-2').length === 1,
        'the records produced after the restart',
      );
      // The marker, produced after both, has arrived: the records from before the restart would have too.
      await collector.flush(topic, 'before-1');
      await collector.flush(topic, 'before-2');
      expect(collector.of('before-1')).toEqual([]);
      expect(collector.of('before-2')).toEqual([]);
    } finally {
      await collector.stop();
    }
  });

  it('faults reach every broker connection: a black hole holds produce requests until lifted, then they are acked', async () => {
    const topic = `hole-${run}`;
    // The producer knows every broker (metadata) and is connected before the hole opens.
    await publishUntilAcked(bus, topic, 'warm');
    kafka.set({ blackhole: true });
    let acked = false;
    const held = bus
      .publish(
        { topic, key: 'held', headers: { 'dtm-gid': 'held' }, value: Buffer.from('held') },
        { timeoutMs: 60_000 },
      )
      .then(() => (acked = true));
    // Nothing can be acknowledged while every broker connection is held; a while is the only way to see "nothing".
    await pause(1_500);
    expect(acked).toBe(false);
    kafka.set({});
    await held;
    expect(acked).toBe(true);
  });

  it('cut and restore keep the data, and producers get through again after it', async () => {
    const topic = `cut-${run}`;
    await publishUntilAcked(bus, topic, 'kept');
    await kafka.cut();
    let failed!: () => void;
    const firstFailure = new Promise<void>((resolve) => (failed = resolve));
    const during = publishUntilAcked(bus, topic, 'during', () => failed());
    // The outage must be seen (a failed publish) before it ends, or it tested nothing.
    await firstFailure;
    await kafka.restore();
    expect(await during).toBeGreaterThan(1);
    const collector = await startKafkaCollector(kafka.brokerList, [topic]);
    try {
      await collector.waitUntil(
        () => collector.of('kept').length === 1 && collector.of('during').length >= 1,
        'the record from before the cut and the one sent during it',
      );
    } finally {
      await collector.stop();
    }
  });
});
