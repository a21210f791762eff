import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { CLUSTER_CLIENT_OPTIONS, masters, scanKeys, type RedisClient } from '@dtm-ts/adapters';
import { parseRedisClusterNodes, type Config } from '@dtm-ts/config';
import {
  startRedis,
  startRedisCluster,
  type RedisClusterProcess,
  type RedisOptions,
  type RedisProcess,
} from '@dtm-ts/testing';

/** Where the integration tests keep their data: one redis-server, or (TEST_REDIS=cluster) a 3-master cluster. */
export type RedisTargetKind = 'single' | 'cluster';

/** The kind this test process runs on: the vitest project `integration-cluster` sets TEST_REDIS=cluster. */
export const testRedisKind: RedisTargetKind = process.env.TEST_REDIS === 'cluster' ? 'cluster' : 'single';

/** A Redis or a Redis Cluster a test started, and how the TM and the test reach it. */
export interface RedisTarget {
  readonly kind: RedisTargetKind;
  /** REDIS_URL (`redis://…`), or REDIS_CLUSTER_NODES's URL form (`redis+cluster://…`). */
  readonly url: string;
  /** The environment variable a role process reads it from. */
  readonly env: Record<string, string>;
  /** The single server, when kind is 'single'. */
  readonly server?: RedisProcess;
  /** The cluster, when kind is 'cluster'. */
  readonly cluster?: RedisClusterProcess;
  /** A new client of the right kind; disconnected by `stop`. */
  client(): RedisClient;
  /** SIGKILLs every node. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

const isClusterUrl = (url: string): boolean => /^rediss?\+cluster:\/\//.test(url);

/** The config of an in-process TM on `url` (a redis:// or a redis+cluster:// URL). */
export const redisConfigOf = (url: string): Partial<Config> =>
  isClusterUrl(url) ? { redisUrl: undefined, redisCluster: parseRedisClusterNodes(url) } : { redisUrl: url };

/** A client of `url`, as the runtime opens it. */
export const clientOf = (url: string): RedisClient => {
  if (!isClusterUrl(url)) return new Redis(url);
  const { nodes } = parseRedisClusterNodes(url);
  return new Cluster([...nodes], CLUSTER_CLIENT_OPTIONS);
};

/** Starts the Redis of `kind` (default: this process's TEST_REDIS). */
export const startRedisTarget = async (kind: RedisTargetKind = testRedisKind): Promise<RedisTarget> => {
  const clients: RedisClient[] = [];
  const base = (url: string) => ({
    url,
    client: () => {
      const c = clientOf(url);
      c.on('error', () => undefined);
      clients.push(c);
      return c;
    },
  });
  const disconnect = () => clients.splice(0).forEach((c) => c.disconnect());
  if (kind === 'single') {
    const server = await startRedis();
    return {
      ...base(server.url),
      kind,
      env: { REDIS_URL: server.url },
      server,
      kill: async () => (disconnect(), server.kill()),
      stop: async () => (disconnect(), server.stop()),
    };
  }
  const cluster = await startRedisCluster({ masters: 3 });
  return {
    ...base(cluster.url),
    kind,
    env: { REDIS_CLUSTER_NODES: cluster.url },
    cluster,
    kill: async () => {
      disconnect();
      await Promise.all(cluster.masters.map((m) => m.kill()));
    },
    stop: async () => (disconnect(), cluster.stop()),
  };
};

export interface RedisServerFixture {
  readonly server: RedisProcess;
  /** A client of `server`, disconnected after the tests. */
  readonly redis: Redis;
}

/**
 * One redis-server (never a cluster) with a client, for the tests of the enclosing describe (or file): started
 * before them, stopped after them. Read the fields inside tests (they are set in beforeAll).
 */
export const useRedisServer = (options?: RedisOptions): RedisServerFixture => {
  const f = {} as { server: RedisProcess; redis: Redis };
  beforeAll(async () => {
    f.server = await startRedis(options);
    f.redis = new Redis(f.server.url);
    // Failures reach a test through the commands it awaits (a test may stop the server); not printed as well.
    f.redis.on('error', () => undefined);
  });
  afterAll(async () => {
    f.redis?.disconnect();
    await f.server?.stop();
  });
  return f;
};

/** How many keys match `pattern`, over every master (SCAN). */
export const countKeys = async (redis: RedisClient, pattern: string): Promise<number> => {
  const seen = new Set<string>();
  for await (const keys of scanKeys(redis, pattern)) for (const k of keys) seen.add(k);
  return seen.size;
};

/** Keys matching `pattern` on each master, in the order of the client's master list (one entry on one Redis). */
export const keysPerMaster = async (redis: RedisClient, pattern: string): Promise<number[]> =>
  Promise.all(
    (await masters(redis)).map(async (node) => {
      const seen = new Set<string>();
      for await (const keys of node.scanStream({ match: pattern, count: 1000 })) {
        for (const k of keys as string[]) seen.add(k);
      }
      return seen.size;
    }),
  );
