import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TxEvent } from '@dtm-ts/domain';
import { NO_STREAM, VersionConflict, type Projection, type TransactionSummary } from '@dtm-ts/ports';
import {
  RedisEventLog,
  RedisFeedSubscriber,
  RedisKeys,
  RedisPassLease,
  RedisReadModel,
  fnv1a32,
  masters,
  partitionOf,
  type RedisClient,
  type TxArchive,
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

/** An archive that holds nothing: only its presence matters to the log (it records archive-due times). */
const noArchive: TxArchive = {
  put: async () => undefined,
  get: async () => null,
  has: async () => false,
  scan: async function* () {},
};

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

describe('RedisEventLog appends that project themselves (appendProjected)', () => {
  const setup = () => {
    const redis = client();
    const shape = { prefix: `proj-${randomUUID()}`, partitions: 4 };
    const keys = new RedisKeys(shape);
    const log = new RedisEventLog(redis, shape);
    const readModel = new RedisReadModel(redis, shape);
    const feedLength = async (): Promise<number> => {
      let n = 0;
      for (const p of keys.all()) n += await redis.xlen(keys.feedKey(p));
      return n;
    };
    return { redis, keys, log, readModel, feedLength };
  };
  const summary = (gid: string, status: 'submitted' | 'succeed'): TransactionSummary => ({
    gid,
    transType: 'saga',
    status,
    createTime: 1_700_000_000_000,
    record: { gid, status },
  });

  /** The row of a transaction still under way, due now; `extra` adds to it (a lease to take). */
  const underWay = (gid: string, extra: Partial<Projection> = {}): Projection => ({
    summary: summary(gid, 'submitted'),
    wakeAt: Date.now(),
    expireAt: null,
    ...extra,
  });

  it('when an append carries its projection, then the read model lists it at that version and the feed has no entry', async () => {
    const { redis, keys, log, readModel, feedLength } = setup();
    const wakeAt = Date.now() + 60_000;
    const v = await log.appendProjected('g1', [submitted(), submitted()], NO_STREAM, {
      summary: summary('g1', 'submitted'),
      wakeAt,
      expireAt: null,
    });
    expect(v).toBe(1);
    expect(await readModel.get('g1')).toMatchObject({ gid: 'g1', status: 'submitted' });
    expect((await readModel.list({ position: '', limit: 10 })).items.map((s) => s.gid)).toEqual(['g1']);
    expect(await readModel.scheduledAfter(wakeAt - 1, 10)).toEqual([{ gid: 'g1', version: 1, wakeAt }]);
    expect(await feedLength()).toBe(0);
    // A projector replaying an older append cannot take the row back.
    expect(await readModel.project(summary('g1', 'submitted'), 0, 0)).toBe(false);
    expect(await redis.zscore(keys.wakeKey(keys.partitionOf('g1')), 'g1')).toBe(String(wakeAt));
  });

  it('when an append records nothing yet, then the read model keeps the previous version and wake time', async () => {
    const { log, readModel, feedLength } = setup();
    const wakeAt = Date.now() + 60_000;
    await log.appendProjected('g2', [submitted()], NO_STREAM, {
      summary: summary('g2', 'submitted'),
      wakeAt,
      expireAt: null,
    });
    expect(await log.appendProjected('g2', [submitted()], 0, null)).toBe(1);
    expect(await readModel.scheduledAfter(wakeAt - 1, 10)).toEqual([{ gid: 'g2', version: 0, wakeAt }]);
    expect((await log.read('g2')).version).toBe(1);
    expect(await feedLength()).toBe(0);
  });

  it('when the last append finishes the transaction, then it leaves the wake set, its lease goes and it is due for archiving', async () => {
    const { redis, keys, log, readModel } = setup();
    const lease = new RedisPassLease(redis, { prefix: keys.prefix, partitions: keys.partitions });
    await log.appendProjected('g3', [submitted()], NO_STREAM, {
      summary: summary('g3', 'submitted'),
      wakeAt: Date.now(),
      expireAt: null,
    });
    expect(await lease.acquire('g3', 10_000)).toHaveProperty('token');
    const expireAt = Date.now() + 60_000;
    const archiving = new RedisEventLog(redis, {
      prefix: keys.prefix,
      partitions: keys.partitions,
      archive: noArchive,
    });
    await archiving.appendProjected('g3', [submitted()], 0, {
      summary: summary('g3', 'succeed'),
      wakeAt: null,
      expireAt,
      endLease: true,
    });
    const p = keys.partitionOf('g3');
    expect(await readModel.get('g3')).toMatchObject({ status: 'succeed' });
    expect(await readModel.unfinishedCount()).toBe(0);
    expect(await redis.exists(keys.leaseKey('g3'))).toBe(0);
    expect(await redis.zscore(keys.archiveDueKey(p), 'g3')).toBe(String(expireAt));
    // No expiry of its own: the archiver drops the row with the stream (archive-drop-5.lua).
    expect(await redis.pttl(keys.readModelKey('g3'))).toBe(-1);
  });

  it('when a log that does not archive finishes a transaction, then its row expires with the retention', async () => {
    const { redis, keys, log } = setup();
    await log.appendProjected('g6', [submitted()], NO_STREAM, underWay('g6'));
    await log.appendProjected('g6', [submitted()], 0, {
      summary: summary('g6', 'succeed'),
      wakeAt: null,
      expireAt: Date.now() + 60_000,
    });
    expect(await redis.zscore(keys.archiveDueKey(keys.partitionOf('g6')), 'g6')).toBeNull();
    expect(await redis.pttl(keys.readModelKey('g6'))).toBeGreaterThan(50_000);
  });

  it('when the append that starts a stream takes the lease, then the lease is held under its token; a later append takes none', async () => {
    const { redis, keys, log } = setup();
    const lease = new RedisPassLease(redis, { prefix: keys.prefix, partitions: keys.partitions });
    await log.appendProjected(
      'g7',
      [submitted()],
      NO_STREAM,
      underWay('g7', { takeLease: { token: 'tok-1', ttlMs: 5_000 } }),
    );
    expect(await redis.get(keys.leaseKey('g7'))).toBe('tok-1');
    const ttl = await redis.pttl(keys.leaseKey('g7'));
    expect(ttl).toBeGreaterThan(2_000);
    expect(ttl).toBeLessThanOrEqual(5_000);
    expect(await lease.acquire('g7', 5_000)).toHaveProperty('heldForMs');
    expect(await lease.renew('g7', 'tok-1', 5_000)).toBe(true);

    // Only a new stream's append takes it: a later one does not overwrite whoever holds it then.
    await lease.release('g7', 'tok-1');
    const other = await lease.acquire('g7', 5_000);
    expect(other).toHaveProperty('token');
    await log.appendProjected('g7', [submitted()], 0, underWay('g7', { takeLease: { token: 'tok-2', ttlMs: 5_000 } }));
    expect(await redis.get(keys.leaseKey('g7'))).toBe((other as { token: string }).token);
  });

  it('when a gid was just archived, then an append that would start its stream anew is refused and writes nothing', async () => {
    const { redis, keys } = setup();
    const archiving = new RedisEventLog(redis, {
      prefix: keys.prefix,
      partitions: keys.partitions,
      archive: noArchive,
    });
    // What archive-drop-5.lua leaves: the stream gone, its lease held by 'archived' for a while.
    await redis.set(keys.leaseKey('g9'), 'archived', 'PX', 30_000);
    for (const takeLease of [undefined, { token: 'tok-4', ttlMs: 5_000 }]) {
      await expect(
        archiving.appendProjected('g9', [submitted()], NO_STREAM, underWay('g9', { takeLease })),
      ).rejects.toBeInstanceOf(VersionConflict);
      expect(await redis.exists(keys.streamKey('g9'), keys.readModelKey('g9'))).toBe(0);
      // The marker stays; taking the lease did not replace it.
      expect(await redis.get(keys.leaseKey('g9'))).toBe('archived');
    }
    await expect(archiving.append('g9', [submitted()], NO_STREAM)).rejects.toBeInstanceOf(VersionConflict);
    expect((await archiving.read('g9')).version).toBe(NO_STREAM);
  });

  it('when the append that would start a stream conflicts, then no lease is taken', async () => {
    const { redis, keys, log } = setup();
    await log.appendProjected('g8', [submitted()], NO_STREAM, underWay('g8'));
    await expect(
      log.appendProjected(
        'g8',
        [submitted()],
        NO_STREAM,
        underWay('g8', { takeLease: { token: 'tok-3', ttlMs: 5_000 } }),
      ),
    ).rejects.toBeInstanceOf(VersionConflict);
    expect(await redis.exists(keys.leaseKey('g8'))).toBe(0);
  });

  it('when the stream moved, then the projected append conflicts and writes neither events nor row', async () => {
    const { log, readModel } = setup();
    await log.appendProjected('g4', [submitted()], NO_STREAM, {
      summary: summary('g4', 'submitted'),
      wakeAt: 1,
      expireAt: null,
    });
    await expect(
      log.appendProjected('g4', [submitted(), submitted()], 5, {
        summary: summary('g4', 'succeed'),
        wakeAt: null,
        expireAt: null,
      }),
    ).rejects.toBeInstanceOf(VersionConflict);
    await expect(
      log.appendProjected('g5', [submitted()], 0, { summary: summary('g5', 'succeed'), wakeAt: null, expireAt: null }),
    ).rejects.toBeInstanceOf(VersionConflict);
    expect((await log.read('g4')).version).toBe(0);
    expect((await log.read('g5')).version).toBe(NO_STREAM);
    expect(await readModel.get('g4')).toMatchObject({ status: 'submitted' });
    expect(await readModel.get('g5')).toBeNull();
  });
});
