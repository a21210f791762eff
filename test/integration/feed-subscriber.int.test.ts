import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import type { TxEvent } from '@dtm-ts/domain';
import { NO_STREAM } from '@dtm-ts/ports';
import {
  RedisEventLog,
  RedisFeedSubscriber,
  RedisKeys,
  partitionOf,
  type RedisFeedEntry,
  type RedisFeedSubscriberOptions,
} from '@dtm-ts/adapters';
import { startRedis } from '@dtm-ts/testing';
import { useRedisServer } from '../support/redis-target';
import { pause, waitFor as waitUntil } from '../support/wait';

const waitFor = (what: string, ok: () => boolean | Promise<boolean>, timeout = 15_000): Promise<true> =>
  waitUntil(ok, what, { timeout, interval: 20 });

const PARTITIONS = 4;

/**
 * The live marker before a check of absence: one append in every partition's feed, after the others. Once the
 * subscriber saw all of them, it has read past everything appended before (each feed is read in order).
 * Marker gids start with `marker-`, so that checks can leave them out.
 */
const markEveryPartition = async (log: RedisEventLog, seen: () => readonly RedisFeedEntry[]): Promise<void> => {
  const run = randomUUID().slice(0, 8);
  const gids: string[] = [];
  for (let n = 0; gids.length < PARTITIONS; n++) {
    const gid = `marker-${run}-${n}`;
    if (!gids.some((g) => partitionOf(g, PARTITIONS) === partitionOf(gid, PARTITIONS))) gids.push(gid);
  }
  for (const gid of gids) await log.append(gid, [event('marker')], NO_STREAM);
  await waitFor('a marker in every partition', () => gids.every((g) => seen().some((e) => e.gid === g)));
};
const unmarked = (entries: readonly RedisFeedEntry[]): RedisFeedEntry[] =>
  entries.filter((e) => !e.gid.startsWith('marker-'));

const event = (label: string): TxEvent => ({
  type: 'TransactionAborting',
  data: { reason: label, at: new Date().toISOString() },
});

const key = (e: RedisFeedEntry): string => `${e.gid}@${e.firstRevision}`;

/** Appends `rounds` appends to each gid, gids concurrently, each gid's in order. Returns the append keys. */
const appendMany = async (log: RedisEventLog, gids: readonly string[], rounds: number): Promise<string[]> => {
  const keys: string[] = [];
  await Promise.all(
    gids.map(async (gid) => {
      let version = (await log.read(gid)).version;
      for (let r = 0; r < rounds; r++) {
        keys.push(`${gid}@${version + 1}`);
        version = await log.append(gid, [event(`${gid} ${r}`), event(`${gid} ${r}b`)], version);
      }
    }),
  );
  return keys;
};

/** Entries still pending (delivered, not acked) in the group, over every partition. */
const pendingCount = async (redis: Redis, keys: RedisKeys, group: string): Promise<number> => {
  let total = 0;
  for (const n of keys.all()) {
    const [count] = (await redis.xpending(keys.feedKey(n), group)) as [number, ...unknown[]];
    total += Number(count);
  }
  return total;
};

describe('RedisFeedSubscriber', () => {
  const fx = useRedisServer();
  const running: RedisFeedSubscriber[] = [];

  afterEach(async () => {
    await Promise.all(running.splice(0).map((s) => s.stop()));
  });

  const setup = () => {
    const prefix = `feed-${randomUUID()}`;
    const log = new RedisEventLog(fx.redis, { prefix, partitions: 4 });
    const keys = new RedisKeys({ prefix, partitions: 4 });
    const subscriber = (opts: Partial<RedisFeedSubscriberOptions> = {}): RedisFeedSubscriber => {
      const s = new RedisFeedSubscriber(fx.redis, {
        prefix,
        partitions: 4,
        group: 'projector',
        consumer: 'c1',
        blockMs: 200,
        retryDelayMs: 50,
        ...opts,
      });
      running.push(s);
      return s;
    };
    return { log, keys, subscriber };
  };

  it('when appends happen before and after it starts, then it sees each once, in order per gid, and acks them', async () => {
    const { log, keys, subscriber } = setup();
    const gids = Array.from({ length: 10 }, (_, i) => `gid-${i}`);
    const before = await appendMany(log, gids.slice(0, 3), 2);
    const seen: RedisFeedEntry[] = [];
    await subscriber().start(async (entries) => {
      seen.push(...entries);
    });
    const after = await appendMany(log, gids, 5);
    const all = [...before, ...after];
    await waitFor('every append', () => seen.length >= all.length);
    await markEveryPartition(log, () => seen);
    expect(unmarked(seen).map(key).sort()).toEqual(all.sort());
    for (const gid of gids) {
      const stored = await log.read(gid);
      let next = 0;
      for (const e of seen.filter((x) => x.gid === gid)) {
        // In order: each append starts where the previous one ended, with the events the stream holds there.
        expect(e.firstRevision).toBe(next);
        expect(e.events).toEqual(stored.events.slice(next, next + 2));
        next += e.events.length;
      }
      expect(next - 1).toBe(stored.version);
    }
    await waitFor('acks', async () => (await pendingCount(fx.redis, keys, 'projector')) === 0);
  });

  it('when stopped while waiting for entries, then it ends promptly', async () => {
    const { subscriber } = setup();
    const s = subscriber({ blockMs: 10_000 });
    await s.start(async () => {});
    // It waits in a blocking read.
    await waitFor('a blocked XREADGROUP', async () =>
      ((await fx.redis.client('LIST')) as string)
        .split('\n')
        .some((c) => c.includes('cmd=xreadgroup') && /flags=\S*b/.test(c)),
    );
    const t0 = Date.now();
    await s.stop();
    expect(Date.now() - t0).toBeLessThan(1_000);
  });

  it('when a second consumer joins the group, then the two share the appends without overlap', async () => {
    const { log, subscriber } = setup();
    const byConsumer = new Map<string, RedisFeedEntry[]>([
      ['c1', []],
      ['c2', []],
    ]);
    for (const consumer of ['c1', 'c2']) {
      await subscriber({ consumer, batch: 5 }).start(async (entries) => {
        byConsumer.get(consumer)?.push(...entries);
        // Slow enough that the other consumer's read is served meanwhile.
        await pause(15);
      });
    }
    const all = await appendMany(
      log,
      Array.from({ length: 20 }, (_, i) => `shared-${i}`),
      5,
    );
    const total = (): number => [...byConsumer.values()].reduce((n, list) => n + list.length, 0);
    await waitFor('every append', () => total() >= all.length);
    await markEveryPartition(log, () => [...byConsumer.values()].flat());
    const c1 = unmarked(byConsumer.get('c1') ?? []);
    const c2 = unmarked(byConsumer.get('c2') ?? []);
    expect(c1.length).toBeGreaterThan(0);
    expect(c2.length).toBeGreaterThan(0);
    expect([...c1, ...c2].map(key).sort()).toEqual(all.sort());
  });

  it('when a consumer stops without acking, then another consumer of the group reclaims its entries', async () => {
    const { log, keys, subscriber } = setup();
    const attempted = new Set<string>();
    const errors: unknown[] = [];
    const dying = subscriber({ consumer: 'dying' });
    await dying.start(async (entries) => {
      for (const e of entries) attempted.add(key(e));
      throw new Error('handler broke');
    });
    // The dying consumer is set to reclaim only after 30 s: it keeps what failed to itself.
    const all = await appendMany(log, ['r-1', 'r-2', 'r-3', 'r-4', 'r-5'], 3);
    await waitFor('the dying consumer to take everything', () => attempted.size === all.length);
    await dying.stop();
    expect(await pendingCount(fx.redis, keys, 'projector')).toBe(all.length);

    const seen: RedisFeedEntry[] = [];
    await subscriber({ consumer: 'heir', claimIdleMs: 300, onError: (err) => errors.push(err) }).start(
      async (entries) => {
        seen.push(...entries);
      },
    );
    await waitFor('the heir to reclaim everything', () => seen.length >= all.length);
    expect(seen.map(key).sort()).toEqual([...all].sort());
    expect(seen.every((e) => e.events.length === 2)).toBe(true);
    await waitFor('acks', async () => (await pendingCount(fx.redis, keys, 'projector')) === 0);
    expect(errors).toEqual([]);
  });

  it('when the handler fails, then the batch is not acked, is reported, and is handled again later', async () => {
    const { log, keys, subscriber } = setup();
    const errors: unknown[] = [];
    const failedOnce = new Set<string>();
    const handled: string[] = [];
    await subscriber({ claimIdleMs: 300, onError: (err) => errors.push(err) }).start(async (entries) => {
      const fresh = entries.filter((e) => !failedOnce.has(key(e)));
      if (fresh.length) {
        for (const e of fresh) failedOnce.add(key(e));
        throw new Error('first try fails');
      }
      handled.push(...entries.map(key));
    });
    const all = await appendMany(log, ['f-1', 'f-2'], 3);
    await waitFor('every append handled', () => new Set(handled).size === all.length);
    expect([...new Set(handled)].sort()).toEqual([...all].sort());
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((e) => e instanceof Error && e.message === 'first try fails')).toBe(true);
    await waitFor('acks', async () => (await pendingCount(fx.redis, keys, 'projector')) === 0);
  });
});

describe('RedisFeedSubscriber across a Redis restart', () => {
  const fx = useRedisServer({ appendonly: true, appendfsync: 'always' });
  let sub: RedisFeedSubscriber | undefined;

  afterEach(async () => {
    await sub?.stop();
    sub = undefined;
  });

  /**
   * The state before a restart: a subscriber on `client` (retrying every 100 ms) that has seen one append to each
   * of 8 gids `<label>-<i>`. Returns what it saw so far and the failures it survived, both still growing.
   */
  const subscribedAndSeen = async (client: Redis, label: string) => {
    const prefix = `${label}-${randomUUID()}`;
    const log = new RedisEventLog(client, { prefix, partitions: 4 });
    const keys = new RedisKeys({ prefix, partitions: 4 });
    const seen: RedisFeedEntry[] = [];
    const errors: unknown[] = [];
    sub = new RedisFeedSubscriber(client, {
      prefix,
      partitions: 4,
      group: 'projector',
      consumer: 'c1',
      blockMs: 200,
      retryDelayMs: 100,
      onError: (err) => errors.push(err),
    });
    await sub.start(async (entries) => {
      seen.push(...entries);
    });
    const gids = Array.from({ length: 8 }, (_, i) => `${label}-${i}`);
    for (const gid of gids) await log.append(gid, [event('before')], NO_STREAM);
    await waitFor('appends before the restart', () => seen.length === gids.length);
    return { log, keys, seen, errors, gids };
  };

  it('when Redis stops and starts again, then the subscriber resumes with the next appends, missing none', async () => {
    const { log, keys, seen, gids } = await subscribedAndSeen(fx.redis, 'restart');
    await waitFor('acks', async () => (await pendingCount(fx.redis, keys, 'projector')) === 0);

    await fx.server.stop();
    await pause(300); // down a moment
    await fx.server.start();

    // The AOF kept the streams and the group.
    await waitFor('the client to reconnect', async () => (await fx.redis.ping().catch(() => '')) === 'PONG');
    expect((await log.read('restart-0')).version).toBe(0);
    for (const gid of gids) await log.append(gid, [event('after')], 0);
    await waitFor('appends after the restart', () => seen.length === gids.length * 2);
    await markEveryPartition(log, () => seen);
    expect(unmarked(seen).map(key).sort()).toEqual([...gids.map((g) => `${g}@0`), ...gids.map((g) => `${g}@1`)].sort());
  });

  it('when Redis comes back empty (no AOF), then the subscriber recreates its group and sees the new appends', async () => {
    const volatile = await startRedis();
    const client = new Redis(volatile.url);
    client.on('error', () => undefined);
    try {
      const { log, keys, seen, errors, gids } = await subscribedAndSeen(client, 'volatile');

      await volatile.kill();
      await volatile.start();
      await waitFor('the client to reconnect', async () => (await client.ping().catch(() => '')) === 'PONG');
      expect((await log.read('volatile-0')).version).toBe(NO_STREAM);
      await waitFor('the groups to be recreated', async () => {
        const groups = await Promise.all(
          keys.all().map((n) => client.xinfo('GROUPS', keys.feedKey(n)).catch(() => [])),
        );
        return groups.every((g) => (g as unknown[]).length === 1);
      });
      const renewed = gids.map((g) => `${g}-again`);
      for (const gid of renewed) await log.append(gid, [event('after')], NO_STREAM);
      await waitFor('appends after the restart', () => seen.length === gids.length * 2);
      expect(seen.slice(gids.length).map(key).sort()).toEqual(renewed.map((g) => `${g}@0`).sort());
      expect(errors.some((e) => e instanceof Error && e.message.startsWith('NOGROUP'))).toBe(true);
    } finally {
      await sub?.stop();
      sub = undefined;
      client.disconnect();
      await volatile.stop();
    }
  });
});
