import type * as KafkaJs from 'kafkajs';
import { describe, expect, it, vi } from 'vitest';

/** The options each kafkajs producer was built with; connecting is never reached by these tests. */
const producerOptions = vi.hoisted(() => [] as Record<string, unknown>[]);
vi.mock('kafkajs', async (importOriginal) => {
  const real = await importOriginal<typeof KafkaJs>();
  class Kafka extends real.Kafka {
    override producer(opts?: Parameters<InstanceType<typeof real.Kafka>['producer']>[0]) {
      producerOptions.push({ ...opts });
      return super.producer(opts);
    }
  }
  return { ...real, Kafka };
});

const { KafkaMessageBus, TopicRefused } = await import('./kafka-message-bus');

const message = (topic: string) => ({ topic, key: 'g1', headers: {}, value: Buffer.from('{}') });

describe('kafka message bus: topics', () => {
  it('when nothing says otherwise, then the producer does not let brokers auto-create topics', async () => {
    producerOptions.length = 0;
    const off = new KafkaMessageBus({ brokers: ['127.0.0.1:1'] });
    const on = new KafkaMessageBus({ brokers: ['127.0.0.1:1'], allowAutoTopicCreation: true });
    expect(producerOptions.map((o) => o.allowAutoTopicCreation)).toEqual([false, true]);
    await Promise.all([off.close(), on.close()]);
  });

  it('when a topic is refused by the allow-list, then publish rejects at once, without connecting', async () => {
    const bus = new KafkaMessageBus({
      brokers: ['127.0.0.1:1'],
      topicRefusal: (t) =>
        t.startsWith('orders.') ? null : `kafka://${t}: topic '${t}' matches no KAFKA_TOPIC_ALLOW pattern`,
    });
    const err = await bus.publish(message('payments'), { timeoutMs: 60_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TopicRefused);
    expect((err as Error).message).toMatch(/KAFKA_TOPIC_ALLOW/);
    await bus.close();
  });
});
