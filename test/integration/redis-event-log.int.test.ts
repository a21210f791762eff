import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TxEvent } from '@dtm-ts/domain';
import { NO_STREAM } from '@dtm-ts/ports';
import {
  RedisEventLog,
  RedisFeedSubscriber,
  RedisKeys,
  fnv1a32,
  masters,
  partitionOf,
  type RedisClient,
} from '@dtm-ts/adapters';
import { describeEventLogConformance } from './event-log.conformance';
import { startRedisTarget, testRedisKind, type RedisTarget } from '../support/redis-target';

// One redis-server, or a 3-master cluster under the integration-cluster project (TEST_REDIS=cluster).
let target: RedisTarget;

beforeAll(async () => {
  target = await startRedisTarget(testRedisKind);
});
afterAll(async () => {
  await target?.stop();
});

const client = (): RedisClient => target.client();

const submitted = (): TxEvent => ({ type: 'TransactionSubmitted', data: { at: new Date().toISOString() } });

for (const partitions of [4, 1]) {
  describeEventLogConformance(`RedisEventLog (${testRedisKind}), ${partitions} partition(s)`, async () => {
    const redis = client();
    const shape = { prefix: `t-${randomUUID()}`, partitions };
    return {
      log: new RedisEventLog(redis, shape),
      subscriber: (name: string) =>
        new RedisFeedSubscriber(redis, {
          ...shape,
          group: name,
          consumer: 'c1',
          blockMs: 200,
          claimIdleMs: 500,
          retryDelayMs: 100,
        }),
      close: async () => {},
    };
  });
}

describe('RedisEventLog key layout', () => {
  it('FNV-1a matches the reference values, so other languages can find the same partition', () => {
    // Test vectors of the FNV specification (32-bit FNV-1a).
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
    expect(partitionOf('foobar', 4)).toBe(0xbf9cf968 % 4);
  });

  it('when a gid is appended, then its stream, feed entry and read model keys share the partition hash tag', async () => {
    const redis = client();
    const prefix = `layout-${randomUUID()}`;
    const keys = new RedisKeys({ prefix, partitions: 4 });
    const log = new RedisEventLog(redis, { prefix, partitions: 4 });
    const seen = new Set<number>();
    for (let i = 0; i < 40; i++) {
      const gid = `gid-${i}`;
      const p = keys.partitionOf(gid);
      seen.add(p);
      const tag = `${prefix}:{p${p}}:`;
      for (const key of [
        keys.streamKey(gid),
        keys.readModelKey(gid),
        keys.feedKey(p),
        keys.indexKey(p),
        keys.wakeKey(p),
      ]) {
        expect(key.startsWith(tag)).toBe(true);
      }
      await log.append(gid, [submitted()], NO_STREAM);
      expect(await redis.llen(`${prefix}:{p${p}}:tx:${gid}`)).toBe(1);
    }
    // 40 gids over 4 partitions: all partitions in use.
    expect([...seen].sort()).toEqual([0, 1, 2, 3]);
    const fields = await redis.xrange(keys.feedKey(keys.partitionOf('gid-7')), '-', '+');
    expect(fields.map(([, f]) => f)).toContainEqual(['g', 'gid-7', 'r', '0', 'c', '1']);
  });

  it('when the checkpoint is not one of this log, then readPage rejects it', async () => {
    const log = new RedisEventLog(client(), { prefix: `cp-${randomUUID()}`, partitions: 4 });
    await expect(log.readPage('1-0,2-0', 10)).rejects.toThrow(/checkpoint/);
    await expect(log.readPage('a,b,c,d', 10)).rejects.toThrow(/checkpoint/);
    expect(await log.readPage(',,,', 10)).toEqual([]);
  });

  it('when Redis lost its script cache, then appends still work', async () => {
    const redis = client();
    const log = new RedisEventLog(redis, { prefix: `flush-${randomUUID()}`, partitions: 4 });
    await log.append('g', [submitted()], NO_STREAM);
    for (const node of await masters(redis)) await node.script('FLUSH');
    expect(await log.append('g', [submitted()], 0)).toBe(1);
  });
});
