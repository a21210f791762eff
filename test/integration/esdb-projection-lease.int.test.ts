import { randomUUID } from 'node:crypto';
import { EventStoreDBClient } from '@eventstore/db-client';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  EsdbEventLog,
  EsdbFeedSubscriber,
  LeasedFeedSubscription,
  RedisReadModel,
  projectionLeaseKeys,
} from '@dtm-ts/adapters';
import { NO_STREAM, type FeedEntry } from '@dtm-ts/ports';
import { freePort, preparedSaga, startEsdbFake, startRedis, type EsdbFake, type RedisProcess } from '@dtm-ts/testing';
import { FoldCache, projectEntries } from '@dtm-ts/worker';
import { startBranchPeer, type BranchPeer } from '../peers/http-branch-peer';
import { spawnRole, stopAll, type RoleProcess } from '../support/processes';
import { sagaBody, uniqueGid } from '../support/tm-harness';

/**
 * Workers on EventStoreDB share the projection through a Redis lease: three projector instances (each with its
 * own Redis and EventStoreDB connections, as three worker processes have) against the gRPC fake and a real
 * redis-server. Each counts the appends its projection handled.
 */
const TTL_MS = 3_000;
const policy = { retryIntervalS: 10, timeoutToFailS: 35, backoffCapS: 3600 };

let redis: RedisProcess;
let fake: EsdbFake;
beforeAll(async () => {
  redis = await startRedis();
  fake = await startEsdbFake();
});
afterAll(async () => {
  await fake?.stop();
  await redis?.stop();
});

interface Projector {
  readonly name: string;
  readonly sub: LeasedFeedSubscription;
  /** `gid@firstRevision` of every append this instance projected, in order. */
  readonly handled: string[];
  readonly leaseChanges: boolean[];
  readonly errors: unknown[];
  /** Stops abruptly, as a killed process: connections cut, the lease neither renewed nor given back. */
  crash(): Promise<void>;
  stop(): Promise<void>;
}

const appendId = (e: FeedEntry): string => `${e.gid}@${e.firstRevision}`;

const startProjectorInstance = async (prefix: string, name: string): Promise<Projector> => {
  const r = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  r.on('error', () => undefined);
  const esdb = EventStoreDBClient.connectionString(fake.url);
  const log = new EsdbEventLog(esdb, { prefix });
  const readModel = new RedisReadModel(r, { prefix, partitions: 4 });
  const handled: string[] = [];
  const leaseChanges: boolean[] = [];
  const errors: unknown[] = [];
  const sub = new LeasedFeedSubscription({
    redis: r,
    prefix,
    purpose: 'read-model',
    owner: `${name}-${randomUUID().slice(0, 8)}`,
    ttlMs: TTL_MS,
    subscribe: (checkpoints) =>
      new EsdbFeedSubscriber(esdb, { prefix, checkpoints, retryDelayMs: 100, onError: (err) => errors.push(err) }),
    onLease: (held) => leaseChanges.push(held),
    onError: (err) => errors.push(err),
  });
  const cache = new FoldCache();
  await sub.start(async (entries) => {
    await projectEntries({ log, readModel, requestTimeoutMs: 3000, policy, cache }, entries);
    handled.push(...entries.map(appendId));
  });
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    r.disconnect();
    await esdb.dispose();
  };
  return {
    name,
    sub,
    handled,
    leaseChanges,
    errors,
    crash: close,
    // After a crash the loop still runs (failing to reach Redis): end it too, so the test leaves nothing behind.
    stop: async () => {
      await sub.stop();
      await close();
    },
  };
};

/** Appends `n` submitted sagas with gids `<tag>-<i>`: two events in two appends each. */
const appendSagas = async (log: EsdbEventLog, tag: string, n: number): Promise<string[]> => {
  const at = new Date().toISOString();
  const gids = Array.from({ length: n }, (_, i) => `${tag}-${i}`);
  await Promise.all(
    gids.map(async (gid) => {
      await log.append(gid, [preparedSaga({ gid, at })], NO_STREAM);
      await log.append(gid, [{ type: 'TransactionSubmitted', data: { at } }], 0);
    }),
  );
  return gids;
};

describe('EventStoreDB projection shared by a Redis lease', () => {
  let prefix: string;
  let client: Redis;
  let esdb: EventStoreDBClient;
  let log: EsdbEventLog;
  let readModel: RedisReadModel;
  let projectors: Projector[] = [];

  beforeAll(() => {
    client = new Redis(redis.url);
    esdb = EventStoreDBClient.connectionString(fake.url);
  });
  afterAll(async () => {
    client.disconnect();
    await esdb.dispose();
  });

  const setUp = async (n: number): Promise<void> => {
    prefix = `p${randomUUID().slice(0, 8)}`;
    log = new EsdbEventLog(esdb, { prefix });
    readModel = new RedisReadModel(client, { prefix, partitions: 4 });
    projectors = [];
    for (let i = 0; i < n; i++) projectors.push(await startProjectorInstance(prefix, `w${i}`));
  };
  afterEach(async () => {
    await Promise.all(projectors.map((p) => p.stop()));
  });

  const actives = (): Projector[] => projectors.filter((p) => p.sub.active);
  const oneActive = async (): Promise<Projector> => {
    await expect.poll(() => actives().length, { timeout: 15_000 }).toBe(1);
    return actives()[0]!;
  };
  /** Every gid is in the read model at version 1 (both appends projected). */
  const projected = async (gids: string[]): Promise<boolean> => {
    const rows = await Promise.all(gids.map((g) => readModel.get(g)));
    return rows.every((r) => r?.status === 'submitted');
  };

  it('when three workers project, then one holds the lease and each append is projected exactly once', async () => {
    await setUp(3);
    const active = await oneActive();
    const gids = await appendSagas(log, 'a', 40);
    await expect.poll(() => projected(gids), { timeout: 20_000 }).toBe(true);
    // A last append after the others: once it is projected, every earlier one was delivered (the feed is ordered).
    const [marker] = await appendSagas(log, 'marker', 1);
    await expect.poll(() => projected([marker!]), { timeout: 20_000 }).toBe(true);

    const all = projectors.flatMap((p) => p.handled);
    expect(all).toHaveLength(2 * 41);
    expect(new Set(all).size).toBe(all.length);
    expect(active.handled).toHaveLength(2 * 41);
    for (const p of projectors) if (p !== active) expect(p.leaseChanges).toEqual([]);
  });

  it('when the active projector dies, then a standby takes over from the checkpoint and nothing is missed', async () => {
    await setUp(3);
    const first = await oneActive();
    const before = await appendSagas(log, 'before', 20);
    await expect.poll(() => projected(before), { timeout: 20_000 }).toBe(true);

    await first.crash();
    const during = await appendSagas(log, 'during', 20);
    // The dead one's lease runs out (TTL), a standby takes it on its next try.
    const others = (): Projector[] => actives().filter((p) => p !== first);
    await expect.poll(() => others().length, { timeout: 15_000 }).toBe(1);
    const second = others()[0]!;
    await expect.poll(() => projected(during), { timeout: 20_000 }).toBe(true);
    const after = await appendSagas(log, 'after', 20);
    await expect.poll(() => projected(after), { timeout: 20_000 }).toBe(true);

    const survivors = projectors.filter((p) => p !== first);
    const handledAfterCrash = survivors.flatMap((p) => p.handled);
    // Nothing the dead one left unsaved is lost; nothing is projected twice by the survivors.
    for (const g of [...during, ...after]) {
      expect(handledAfterCrash).toContain(`${g}@0`);
      expect(handledAfterCrash).toContain(`${g}@1`);
    }
    expect(new Set(handledAfterCrash).size).toBe(handledAfterCrash.length);
    expect(survivors.filter((p) => p.handled.length > 0)).toEqual([second]);
  });

  it('when the lease is taken from the holder, then it stops projecting and cannot move the checkpoint', async () => {
    await setUp(2);
    const holder = await oneActive();
    const first = await appendSagas(log, 'first', 5);
    await expect.poll(() => projected(first), { timeout: 20_000 }).toBe(true);
    const keys = projectionLeaseKeys(prefix, 'read-model');
    const saved = await client.get(keys.checkpoint);
    expect(saved).not.toBeNull();

    // As if the holder had been paused past its TTL and someone else took over.
    await client.set(keys.lease, 'someone-else', 'PX', 60_000);
    const second = await appendSagas(log, 'second', 5);
    await expect.poll(() => holder.leaseChanges, { timeout: 15_000 }).toEqual([true, false]);
    expect(actives()).toEqual([]);
    // Whatever the old holder still handled before it noticed, its checkpoint saves were refused.
    expect(await client.get(keys.checkpoint)).toBe(saved);

    await client.del(keys.lease);
    await oneActive();
    await expect.poll(() => projected(second), { timeout: 20_000 }).toBe(true);
    await expect.poll(() => client.get(keys.checkpoint), { timeout: 15_000 }).not.toBe(saved);
  });
});

describe('EventStoreDB projection lease in real worker processes', () => {
  const procs: RoleProcess[] = [];
  let peer: BranchPeer | undefined;
  afterEach(async () => {
    await stopAll(procs.splice(0), 'SIGKILL');
    await peer?.close();
    peer = undefined;
  });

  /** dtm_projection_lease_held of a worker, read from its metrics port; null when it does not answer. */
  const leaseHeld = async (metricsPort: number): Promise<number | null> => {
    try {
      const page = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      const line = page.split('\n').find((l) => l.startsWith('dtm_projection_lease_held{'));
      return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : null;
    } catch {
      return null;
    }
  };

  it('when two workers run, then one projects; when it is SIGKILLed, then the other takes over and every saga reaches the read model', async () => {
    peer = await startBranchPeer();
    const env = {
      REDIS_URL: redis.url,
      KEY_PREFIX: `pl${randomUUID().slice(0, 8)}`,
      EVENT_STORE: 'esdb',
      ESDB_URL: fake.url,
      PROJECTION_LEASE_MS: String(TTL_MS),
    };
    const ports = [await freePort(), await freePort()];
    for (const port of ports) procs.push(await spawnRole('worker', { ...env, METRICS_PORT: String(port) }));
    const api = await spawnRole('api', env);
    procs.push(api);
    const client = new Redis(redis.url);
    const readModel = new RedisReadModel(client, { prefix: env.KEY_PREFIX, partitions: 4 });
    const submit = async (label: string, n: number): Promise<string[]> =>
      Promise.all(
        Array.from({ length: n }, async () => {
          const gid = uniqueGid(label);
          const steps = [0, 1].map((i) => ({
            action: peer!.url(`${gid}/a${i}`),
            compensate: peer!.url(`${gid}/c${i}`),
          }));
          const r = await fetch(`${api.url}/api/dtmsvr/submit`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(sagaBody(gid, steps)),
          });
          expect(r.status, await r.text()).toBe(200);
          return gid;
        }),
      );
    const allSucceedInReadModel = async (gids: string[]): Promise<boolean> =>
      (await Promise.all(gids.map((g) => readModel.get(g)))).every((s) => s?.status === 'succeed');
    try {
      const held = async (): Promise<(number | null)[]> => Promise.all(ports.map(leaseHeld));
      await expect.poll(async () => (await held()).sort(), { timeout: 20_000 }).toEqual([0, 1]);
      const holder = (await held()).indexOf(1);
      const before = await submit('lease-before', 20);
      await expect.poll(() => allSucceedInReadModel(before), { timeout: 30_000 }).toBe(true);

      await procs[holder]!.kill('SIGKILL');
      const other = ports[1 - holder]!;
      await expect.poll(() => leaseHeld(other), { timeout: 20_000 }).toBe(1);
      const after = await submit('lease-after', 20);
      await expect.poll(() => allSucceedInReadModel([...before, ...after]), { timeout: 30_000 }).toBe(true);
    } finally {
      client.disconnect();
    }
  }, 120_000);
});
