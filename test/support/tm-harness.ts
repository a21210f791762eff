import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { startEsdbFake, startKafkaMock, startRedis, type KafkaMock, type RedisProcess } from '@dtm-ts/testing';
import { startBranchPeer, type BranchPeer } from '../peers/http-branch-peer';
import { loadConfig, type Config } from '@dtm-ts/config';
import { createLogger } from '@dtm-ts/telemetry';
import { startTm, type RunningTm } from '@dtm-ts/tm';
import { pause, waitFor } from './wait';
import { redisConfigOf, startRedisTarget, testRedisKind, type RedisTarget } from './redis-target';

/**
 * An in-process TM (API + worker) on port 0 against the given Redis (a `redis+cluster://` URL: a cluster, with
 * 12 partitions, 4 per master), with a fresh key prefix. With TEST_EVENT_STORE=esdb its log is on EventStoreDB:
 * the server at ESDB_URL, or else a gRPC fake of its own.
 */
export const startTestTm = async (redisUrl: string, overrides: Partial<Config> = {}): Promise<RunningTm> => {
  const fake =
    process.env.TEST_EVENT_STORE === 'esdb' && !process.env.ESDB_URL && !overrides.eventStore
      ? await startEsdbFake()
      : undefined;
  const esdbUrl = fake?.url ?? process.env.ESDB_URL;
  const esdb: Partial<Config> =
    process.env.TEST_EVENT_STORE === 'esdb' && esdbUrl ? { eventStore: 'esdb', esdbUrl } : {};
  const config = loadConfig(
    {},
    {
      ...redisConfigOf(redisUrl),
      ...(redisConfigOf(redisUrl).redisCluster ? { partitions: 12 } : {}),
      port: 0,
      // No gRPC API unless a test asks for one on a port of its own (36790 is shared by every process here).
      grpcPort: 0,
      host: '127.0.0.1',
      prefix: `t${randomUUID().slice(0, 8)}`,
      logLevel: 'warn',
      retryIntervalS: 1,
      requestTimeoutS: 3,
      backoffCapS: 8,
      jobLockMs: 3000,
      sweepIntervalMs: 500,
      sweepGraceMs: 2000,
      // Archived streams go to a directory of the test's own, never the repository's data/.
      archiveDir: join(tmpdir(), `dtm-ts-archive-${randomUUID()}`),
      ...esdb,
      ...overrides,
    },
  );
  const tm = await startTm(config, createLogger(config.logLevel, 'test-tm')).catch(async (err: unknown) => {
    await fake?.stop();
    throw err;
  });
  if (!fake) return tm;
  return { ...tm, close: () => tm.close().finally(() => fake.stop()) };
};

export interface DtmClient {
  post(path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }>;
  postRaw(path: string, raw: string, contentType?: string): Promise<{ status: number; body: Record<string, unknown> }>;
  get(path: string): Promise<{ status: number; body: Record<string, unknown> }>;
  query(gid: string): Promise<{ transaction: Record<string, unknown> | null; branches: Record<string, unknown>[] }>;
  /** Polls `/query` until the transaction has `status` (or any final status when 'final'); fails the test on timeout. */
  waitFor(gid: string, status: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

const parse = async (r: Response) => {
  const text = await r.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = { raw: text };
  }
  return { status: r.status, body };
};

export const dtmClient = (baseUrl: string): DtmClient => {
  const api = `${baseUrl}/api/dtmsvr`;
  const client: DtmClient = {
    post: async (path, body) =>
      parse(
        await fetch(`${api}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        }),
      ),
    postRaw: async (path, raw, contentType = 'application/json') =>
      parse(await fetch(`${api}${path}`, { method: 'POST', headers: { 'content-type': contentType }, body: raw })),
    get: async (path) => parse(await fetch(`${api}${path}`)),
    query: async (gid) => (await client.get(`/query?gid=${encodeURIComponent(gid)}`)).body as never,
    waitFor: async (gid, status, timeoutMs = 20_000) => {
      let last: Record<string, unknown> | null = null;
      return waitFor(
        async () => {
          last = (await client.query(gid)).transaction;
          const s = last?.status as string | undefined;
          return s === status || (status === 'final' && (s === 'succeed' || s === 'failed')) ? last : undefined;
        },
        () => `transaction ${gid} did not reach '${status}'; last: ${JSON.stringify(last)}`,
        { timeout: timeoutMs },
      );
    },
  };
  return client;
};

/** A saga body as DTM's clients send it. */
export const sagaBody = (
  gid: string,
  steps: { action: string; compensate: string }[],
  extra: Record<string, unknown> = {},
): Record<string, unknown> => ({
  gid,
  trans_type: 'saga',
  steps,
  payloads: steps.map((_, i) => JSON.stringify({ amount: 30, step: i })),
  ...extra,
});

export const uniqueGid = (label: string): string => `${label}-${randomUUID().slice(0, 12)}`;

/**
 * Polls `/query` for every gid until each has a final status (or `timeoutMs` passed), `parallel` requests at a
 * time; returns the last status seen of each ('none' for no transaction, 'unreachable' when the API did not
 * answer). It does not fail the test: the caller asserts on what it returns.
 */
export const waitAllFinal = async (
  dtm: DtmClient,
  gids: readonly string[],
  timeoutMs: number,
  parallel = 25,
): Promise<Map<string, string>> => {
  const statuses = new Map<string, string>(gids.map((g) => [g, 'unknown']));
  const deadline = Date.now() + timeoutMs;
  let open = [...gids];
  // At least one round, even with no time to wait.
  for (let round = 0; open.length && (round === 0 || Date.now() < deadline); round++) {
    for (let i = 0; i < open.length; i += parallel) {
      await Promise.all(
        open.slice(i, i + parallel).map(async (gid) => {
          try {
            const q = await dtm.query(gid);
            statuses.set(gid, (q.transaction?.status as string | undefined) ?? 'none');
          } catch {
            statuses.set(gid, 'unreachable');
          }
        }),
      );
    }
    open = open.filter((g) => !['succeed', 'failed'].includes(statuses.get(g)!));
    if (open.length) await pause(200);
  }
  return statuses;
};

/**
 * The live marker before a check of absence: a one-step saga submitted now, run to its end. Once it
 * succeeded, the API and the workers have moved past everything queued before it, so a call that
 * was still to come would have been made (call it after the transaction in question reached its state).
 */
export const liveMarker = async (dtm: DtmClient, peer: BranchPeer): Promise<void> => {
  const gid = uniqueGid('marker');
  await dtm.post('/submit', sagaBody(gid, [{ action: peer.url(`${gid}/a`), compensate: peer.url(`${gid}/c`) }]));
  await dtm.waitFor(gid, 'succeed');
};

export interface TmFixture {
  readonly redis: RedisTarget;
  readonly tm: RunningTm;
  readonly peer: BranchPeer;
  readonly dtm: DtmClient;
}

/**
 * The usual integration setup, once per file: a real redis-server (a 3-master Redis Cluster with
 * TEST_REDIS=cluster), an in-process TM against it, a scripted RM peer and a DTM client. Read the fields inside
 * tests (they are set in beforeAll).
 */
export const useTmFixture = (overrides: Partial<Config> = {}): TmFixture => {
  const f = {} as { redis: RedisTarget; tm: RunningTm; peer: BranchPeer; dtm: DtmClient };
  beforeAll(async () => {
    f.redis = await startRedisTarget(testRedisKind);
    f.tm = await startTestTm(f.redis.url, overrides);
    f.peer = await startBranchPeer();
    f.dtm = dtmClient(f.tm.url);
  });
  afterAll(async () => {
    await f.tm?.close();
    await f.peer?.close();
    await f.redis?.stop();
  });
  return f;
};

export interface KafkaTmFixture {
  readonly redis: RedisProcess;
  readonly kafka: KafkaMock;
  readonly tm: RunningTm;
  readonly dtm: DtmClient;
}

/**
 * The Kafka tests' setup, once per file: a redis-server and librdkafka's mock cluster, an in-process TM that
 * publishes to it, and a DTM client. Read the fields inside tests (they are set in beforeAll).
 */
export const useKafkaTmFixture = (): KafkaTmFixture => {
  const f = {} as { redis: RedisProcess; kafka: KafkaMock; tm: RunningTm; dtm: DtmClient };
  beforeAll(async () => {
    [f.redis, f.kafka] = await Promise.all([startRedis(), startKafkaMock()]);
    f.tm = await startTestTm(f.redis.url, { kafkaBrokers: [...f.kafka.brokers] });
    f.dtm = dtmClient(f.tm.url);
  });
  afterAll(async () => {
    await f.tm?.close();
    await f.kafka?.stop();
    await f.redis?.stop();
  });
  return f;
};
