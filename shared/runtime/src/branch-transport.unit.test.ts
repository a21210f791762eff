import { describe, expect, it } from 'vitest';
import { HttpBranchTransport, RoutingBranchTransport } from '@dtm-ts/adapters';
import { ConfigError, loadConfig } from '@dtm-ts/config';
import { createLogger } from '@dtm-ts/telemetry';
import { createBranchTransport } from './branch-transport';

const logger = createLogger('silent', 'test');

describe('branch transport wiring', () => {
  it('when KAFKA_BROKERS is unset, then branches are called over HTTP only', async () => {
    const t = createBranchTransport(loadConfig({}), logger);
    expect(t).toBeInstanceOf(HttpBranchTransport);
    await t.close();
  });

  it('when KAFKA_BROKERS is set, then kafka:// steps are routed to Kafka, without connecting before the first record', async () => {
    // Nothing listens on port 1: building it must not fail, so a TM starts while Kafka is down.
    const t = createBranchTransport(loadConfig({ KAFKA_BROKERS: '127.0.0.1:1' }), logger);
    expect(t).toBeInstanceOf(RoutingBranchTransport);
    await t.close();
  });

  it('when a SASL mechanism lacks its user name or password, then the configuration is refused', () => {
    const env = { KAFKA_BROKERS: 'kafka:9092', KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_SASL_USERNAME: 'dtm' };
    expect(() => createBranchTransport(loadConfig(env), logger)).toThrow(ConfigError);
    expect(() => createBranchTransport(loadConfig(env), logger)).toThrow(/KAFKA_SASL_PASSWORD/);
    const ok = createBranchTransport(loadConfig({ ...env, KAFKA_SASL_PASSWORD: 's3cret' }), logger);
    expect(ok).toBeInstanceOf(RoutingBranchTransport);
    return ok.close();
  });
});
