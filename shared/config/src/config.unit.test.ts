import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, configDocs, loadConfig, parseRedisClusterNodes } from './index';

describe('configuration', () => {
  it('when nothing is set, then every key has its documented default', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ port: 36789, retryIntervalS: 10, timeoutToFailS: 35, requestTimeoutS: 3, prefix: 'dtm' });
    expect(c.redisUrl).toBeUndefined();
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('when variables are bad, then one error names every one of them', () => {
    const bad = () => loadConfig({ PORT: 'eighty', RETRY_INTERVAL: '0', REDIS_URL: 'not a url', LOG_LEVEL: 'loud' });
    expect(bad).toThrow(ConfigError);
    expect(bad).toThrow(/PORT="eighty"/);
    expect(bad).toThrow(/RETRY_INTERVAL="0"/);
    expect(bad).toThrow(/REDIS_URL="not a url"/);
    expect(bad).toThrow(/LOG_LEVEL="loud"/);
  });

  it('when variables are set, then they are parsed to their types', () => {
    const c = loadConfig({ PORT: '8080', REDIS_URL: 'redis://h:1/2', INLINE_PASSES: '0', RETRY_BACKOFF_CAP: '60' });
    expect(c).toMatchObject({ port: 8080, redisUrl: 'redis://h:1/2', inlinePasses: 0, backoffCapS: 60 });
  });

  it('documents every variable in the README table with its default', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    for (const d of configDocs()) {
      const cells = readme
        .split('\n')
        .map((l) => l.split('|').map((c) => c.trim()))
        .find((c) => c[1] === `\`${d.env}\``);
      expect(cells, `README has no row for ${d.env}`).toBeDefined();
      expect(cells![2]).toBe(d.default === '' ? '—' : `\`${d.default}\``);
    }
  });
});

describe('Redis Cluster settings', () => {
  it('when REDIS_CLUSTER_NODES is a host:port list, then it gives the seed nodes without auth or TLS', () => {
    const c = loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:7000, redis-b:7001,[::1]:7002' });
    expect(c.redisCluster).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: 'redis-b', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      tls: false,
    });
  });

  it('when it is a redis+cluster URL, then user, password and TLS carry over to every node', () => {
    expect(parseRedisClusterNodes('redis+cluster://app:p%40ss@a:7000,b:7001/?tls=true')).toEqual({
      nodes: [
        { host: 'a', port: 7000 },
        { host: 'b', port: 7001 },
      ],
      username: 'app',
      password: 'p@ss',
      tls: true,
    });
    expect(parseRedisClusterNodes('rediss+cluster://:secret@a:7000')).toEqual({
      nodes: [{ host: 'a', port: 7000 }],
      password: 'secret',
      tls: true,
    });
  });

  it('when it is malformed, then the error names the variable and hides the value', () => {
    for (const bad of ['a:7000,b', 'redis://a:7000', 'a:70000', 'redis+cluster://u:hunter2@a:1/?db=2', ',']) {
      const load = () => loadConfig({ REDIS_CLUSTER_NODES: bad });
      expect(load).toThrow(/REDIS_CLUSTER_NODES=\(value not shown\)/);
      expect(load).not.toThrow(/hunter2/);
    }
  });

  it('when both REDIS_URL and REDIS_CLUSTER_NODES are set, then the configuration is refused', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://h:1', REDIS_CLUSTER_NODES: 'a:7000' })).toThrow(
      /REDIS_URL and REDIS_CLUSTER_NODES: set one of them/,
    );
  });

  it('when REDIS_URL holds a cluster URL, then it is refused with where it goes', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis+cluster://a:7000,b:7001' })).toThrow(
      /REDIS_URL=.*a cluster URL goes in REDIS_CLUSTER_NODES/,
    );
  });

  it('when PASS_QUEUES exceeds LOG_PARTITIONS, then the configuration is refused', () => {
    expect(() => loadConfig({ PASS_QUEUES: '8', LOG_PARTITIONS: '4' })).toThrow(
      /PASS_QUEUES=8: at most LOG_PARTITIONS/,
    );
    expect(loadConfig({ PASS_QUEUES: '4', LOG_PARTITIONS: '4' }).passQueues).toBe(4);
  });
});
