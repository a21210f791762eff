import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './index';

describe('kafka configuration', () => {
  it('when KAFKA_BROKERS is unset, then Kafka is off and the rest has defaults', () => {
    const c = loadConfig({});
    expect(c.kafkaBrokers).toBeUndefined();
    expect(c).toMatchObject({ kafkaClientId: 'dtm-ts', kafkaSsl: false });
    expect(c.kafkaSaslMechanism).toBeUndefined();
  });

  it('when KAFKA_BROKERS is a comma list, then it is split and trimmed (IPv6 in brackets too)', () => {
    const c = loadConfig({ KAFKA_BROKERS: 'kafka-1:9092, kafka-2:9092,[::1]:9093', KAFKA_SSL: 'true' });
    expect(c.kafkaBrokers).toEqual(['kafka-1:9092', 'kafka-2:9092', '[::1]:9093']);
    expect(c.kafkaSsl).toBe(true);
    expect(loadConfig({ KAFKA_SSL: '0' }).kafkaSsl).toBe(false);
  });

  it('when Kafka variables are bad, then each is named', () => {
    const bad = () => loadConfig({ KAFKA_BROKERS: 'kafka-1', KAFKA_SSL: 'maybe', KAFKA_SASL_MECHANISM: 'gssapi' });
    expect(bad).toThrow(ConfigError);
    expect(bad).toThrow(/KAFKA_BROKERS="kafka-1": expected host:port/);
    expect(bad).toThrow(/KAFKA_SSL="maybe"/);
    expect(bad).toThrow(/KAFKA_SASL_MECHANISM="gssapi"/);
  });

  it('when another Kafka variable is bad, then the SASL password stays out of the error', () => {
    expect(() => loadConfig({ KAFKA_SASL_PASSWORD: 'hunter2', KAFKA_SSL: 'maybe' })).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('hunter2') }),
    );
  });
});
