import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RoutingBranchTransport } from '@dtm-ts/adapters';
import { ConfigError, loadConfig } from '@dtm-ts/config';
import { createLogger } from '@dtm-ts/telemetry';
import { branchSigningKey, createBranchTransport, createOutboundPolicy } from './branch-transport';

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

  it('when a kafka:// step names a topic outside KAFKA_TOPIC_ALLOW, then producing is refused as an error outcome', async () => {
    const t = createBranchTransport(
      loadConfig({ KAFKA_BROKERS: '127.0.0.1:1', KAFKA_TOPIC_ALLOW: 'orders.*' }),
      logger,
    );
    const outcome = await t.call({
      gid: 'g1',
      transType: 'msg',
      branchId: '01',
      op: 'action',
      url: 'kafka://payments',
      data: '{}',
      headers: {},
      timeoutMs: 60_000,
    });
    expect(outcome).toEqual({
      kind: 'error',
      detail: "kafka topic payments: kafka://payments: topic 'payments' matches no KAFKA_TOPIC_ALLOW pattern",
    });
    await t.close();
  });
});

describe('outbound policy wiring', () => {
  it("when Redis, EventStoreDB and Kafka are configured, then their endpoints and the TM's ports are refused", () => {
    const policy = createOutboundPolicy(
      loadConfig({
        PORT: '36789',
        METRICS_PORT: '9464',
        REDIS_URL: 'redis://:pw@redis.internal:6380/0',
        EVENT_STORE: 'esdb',
        ESDB_URL: 'esdb://admin:changeit@es1.internal:2113,es2.internal?tls=false',
        KAFKA_BROKERS: 'kafka-0.internal:9092,[fd00::9]:9093',
      }),
    );
    for (const url of [
      'http://127.0.0.1:36789/api/dtmsvr/forceStop',
      'http://localhost:9464/metrics',
      'http://redis.internal:6380/',
      'http://es1.internal:2113/',
      'http://es2.internal:2113/',
      'http://kafka-0.internal:9092/',
      'http://[fd00::9]:9093/',
    ]) {
      expect(policy.refusal(url), url).toMatch(/own endpoint/);
    }
    expect(policy.refusal('http://redis.internal:8080/')).toBeNull();
  });

  it('when a Redis Cluster is configured, then its seed nodes are refused', () => {
    const policy = createOutboundPolicy(
      loadConfig({ REDIS_CLUSTER_NODES: 'redis+cluster://u:pw@redis-a.internal:7000,redis-b.internal:7001' }),
    );
    expect(policy.refusal('http://redis-a.internal:7000/')).toMatch(/own endpoint/);
    expect(policy.refusal('http://redis-b.internal:7001/x')).toMatch(/own endpoint/);
    expect(policy.refusal('http://redis-a.internal:8080/')).toBeNull();
  });

  it('when OUTBOUND_DENY or KAFKA_TOPIC_ALLOW cannot be read, then the configuration is refused naming the entry', () => {
    expect(() => createOutboundPolicy(loadConfig({ OUTBOUND_DENY: '10.0.0.0/40' }))).toThrow(ConfigError);
    expect(() => createOutboundPolicy(loadConfig({ OUTBOUND_DENY: '10.0.0.0/40' }))).toThrow(/'10.0.0.0\/40'/);
    expect(() => createOutboundPolicy(loadConfig({ KAFKA_TOPIC_ALLOW: 'a|b' }))).toThrow(/KAFKA_TOPIC_ALLOW: 'a\|b'/);
  });

  it('when the signing key comes from a file, then it is read and trimmed; both or a short one is refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dtm-key-'));
    const file = join(dir, 'key');
    writeFileSync(file, '  from-a-file-0123456789\n');
    expect(branchSigningKey(loadConfig({ BRANCH_SIGNING_KEY_FILE: file }))).toBe('from-a-file-0123456789');
    expect(branchSigningKey(loadConfig({ BRANCH_SIGNING_KEY: 'from-the-env-0123456789' }))).toBe(
      'from-the-env-0123456789',
    );
    expect(branchSigningKey(loadConfig({}))).toBeUndefined();
    expect(() =>
      branchSigningKey(loadConfig({ BRANCH_SIGNING_KEY: 'from-the-env-0123456789', BRANCH_SIGNING_KEY_FILE: file })),
    ).toThrow(/not both/);
    expect(() => branchSigningKey(loadConfig({ BRANCH_SIGNING_KEY_FILE: join(dir, 'missing') }))).toThrow(ConfigError);
    writeFileSync(file, 'short\n');
    expect(() => branchSigningKey(loadConfig({ BRANCH_SIGNING_KEY_FILE: file }))).toThrow(/at least 16/);
    const short = () => branchSigningKey(loadConfig({ BRANCH_SIGNING_KEY: 'sh0rt-secret' }));
    expect(short).toThrow(/BRANCH_SIGNING_KEY: the key needs at least 16 characters/);
    expect(short).not.toThrow(/sh0rt-secret/);
  });
});
