import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { TxEvent } from '@dtm-ts/domain';
import { NO_STREAM } from '@dtm-ts/ports';
import { RedisEventLog, RedisFeedSubscriber, RedisKeys, trimFeed, type RedisFeedEntry } from '@dtm-ts/adapters';
import { useRedisServer } from '../support/redis-target';

/** Polls `ok` until it holds, failing with `what` after a generous deadline (the machine may be busy). */
const waitFor = (what: string, ok: () => Promise<boolean>): Promise<void> =>
  expect.poll(ok, { message: `waiting for ${what}`, timeout: 20_000, interval: 25 }).toBe(true);

const event = (n: number): TxEvent => ({
  type: 'TransactionAborting',
  data: { reason: `r${n}`, at: new Date().toISOString() },
});

describe('feed trimming', () => {
  const fx = useRedisServer();

  const feedLength = async (keys: RedisKeys): Promise<number> => {
    let n = 0;
    for (const p of keys.all()) n += await fx.redis.xlen(keys.feedKey(p));
    return n;
  };

  it('when the projector group has acknowledged the appends, then the feed streams are trimmed to nothing', async () => {
    const prefix = `trim-${randomUUID()}`;
    const log = new RedisEventLog(fx.redis, { prefix, partitions: 2 });
    const keys = new RedisKeys({ prefix, partitions: 2 });
    let seen = 0;
    const sub = new RedisFeedSubscriber(fx.redis, {
      prefix,
      partitions: 2,
      group: 'read-model',
      consumer: 'c1',
      blockMs: 100,
      claimIdleMs: 400, // a reclaim (and trim) pass every 200 ms
    });
    await sub.start(async (entries) => {
      seen += entries.length;
    });
    try {
      for (let i = 0; i < 300; i++) await log.append(`g${i}`, [event(i)], NO_STREAM);
      await waitFor('every append handled', async () => seen >= 300);
      await waitFor('feed trimmed', async () => (await feedLength(keys)) === 0);
      // The log itself keeps every event.
      expect((await log.read('g7')).events).toHaveLength(1);
    } finally {
      await sub.stop();
    }
  });

  it('when a consumer holds entries it has not acknowledged, then trimming keeps them and another consumer gets them', async () => {
    const prefix = `trim-${randomUUID()}`;
    const log = new RedisEventLog(fx.redis, { prefix, partitions: 1 });
    const keys = new RedisKeys({ prefix, partitions: 1 });
    const feed = keys.feedKey(0);
    await fx.redis.xgroup('CREATE', feed, 'read-model', '0', 'MKSTREAM');
    for (let i = 0; i < 10; i++) await log.append(`a${i}`, [event(i)], NO_STREAM);
    // A lagging consumer takes the first ten entries and dies before acknowledging them.
    await fx.redis.xreadgroup('GROUP', 'read-model', 'dead', 'COUNT', 10, 'STREAMS', feed, '>');
    for (let i = 0; i < 10; i++) await log.append(`b${i}`, [event(i)], NO_STREAM);
    // Nothing acknowledged: a trim deletes nothing.
    expect(await trimFeed(fx.redis, feed)).toBe(0);
    expect(await fx.redis.xlen(feed)).toBe(20);

    const seen: RedisFeedEntry[] = [];
    const sub = new RedisFeedSubscriber(fx.redis, {
      prefix,
      partitions: 1,
      group: 'read-model',
      consumer: 'live',
      blockMs: 100,
      claimIdleMs: 300,
    });
    await sub.start(async (entries) => {
      seen.push(...entries);
    });
    try {
      // The live consumer handles b*, trims (the dead one's a* stay), then reclaims a* once idle.
      await waitFor(
        "every entry handled, the dead consumer's too",
        async () => new Set(seen.map((e) => e.gid)).size === 20,
      );
      expect([...new Set(seen.map((e) => e.gid))].sort()).toEqual(
        [...Array.from({ length: 10 }, (_, i) => `a${i}`), ...Array.from({ length: 10 }, (_, i) => `b${i}`)].sort(),
      );
      await waitFor('feed trimmed once all are acknowledged', async () => (await fx.redis.xlen(feed)) === 0);
    } finally {
      await sub.stop();
    }
  });

  it('when a group has not been delivered some entries yet, then trimming keeps those', async () => {
    const prefix = `trim-${randomUUID()}`;
    const log = new RedisEventLog(fx.redis, { prefix, partitions: 1 });
    const feed = new RedisKeys({ prefix, partitions: 1 }).feedKey(0);
    await fx.redis.xgroup('CREATE', feed, 'read-model', '0', 'MKSTREAM');
    for (let i = 0; i < 6; i++) await log.append(`c${i}`, [event(i)], NO_STREAM);
    const [[, taken] = ['', []]] = (await fx.redis.xreadgroup(
      'GROUP',
      'read-model',
      'c',
      'COUNT',
      4,
      'STREAMS',
      feed,
      '>',
    )) as [string, [string, string[]][]][];
    await fx.redis.xack(feed, 'read-model', ...taken.map(([id]) => id));
    expect(await trimFeed(fx.redis, feed)).toBe(4);
    const left = (await fx.redis.xrange(feed, '-', '+')).map(([, f]) => f[1]);
    expect(left).toEqual(['c4', 'c5']);
  });
});
