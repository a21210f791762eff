import { describe, expect, it } from 'vitest';
import { RoutingBranchTransport } from '@dtm-ts/adapters';
import { ConfigError, loadConfig } from '@dtm-ts/config';
import { createLogger } from '@dtm-ts/telemetry';
import { createBranchTransport } from './branch-transport';

const logger = createLogger('silent', 'test');

describe('branch transport wiring', () => {
  it('when KAFKA_BROKERS is unset, then kafka:// steps are errors and http urls still go over HTTP', async () => {
    const t = createBranchTransport(loadConfig({}), logger);
    expect(t).toBeInstanceOf(RoutingBranchTransport);
    const req = { gid: 'g', transType: 'msg', branchId: '01', op: 'action', data: '', headers: {}, timeoutMs: 500 };
    expect(await t.call({ ...req, url: 'kafka://orders' })).toEqual({
      kind: 'error',
      detail: 'kafka topic orders: KAFKA_BROKERS is not set',
    });
    // Nothing listens on port 1: the HTTP transport answers with a refused connection.
    expect(await t.call({ ...req, url: 'http://127.0.0.1:1/x' })).toMatchObject({
      kind: 'error',
      detail: expect.stringContaining('ECONNREFUSED'),
    });
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
