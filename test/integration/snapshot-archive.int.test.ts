import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fold, type TxEvent } from '@dtm-ts/domain';
import { NO_STREAM, VersionConflict } from '@dtm-ts/ports';
import { FileArchive, RedisArchiver, RedisEventLog, RedisKeys, type TxArchive } from '@dtm-ts/adapters';
import { preparedSaga, startRedis, type RedisProcess } from '@dtm-ts/testing';

const at = (s: number): string => new Date(Date.UTC(2026, 0, 1) + s * 1000).toISOString();

const prepared = preparedSaga({ gid: 'g', at: at(0) });
const retry = (i: number): TxEvent => ({
  type: 'BranchRetryScheduled',
  data: { branchId: '01', op: 'action', outcome: 'ongoing', detail: `try ${i}`, at: at(i), retryAt: at(i + 10) },
});

/** Every key of this prefix, by SCAN. */
const keysOf = async (redis: Redis, prefix: string): Promise<string[]> => {
  const out: string[] = [];
  for await (const keys of redis.scanStream({ match: `${prefix}:*`, count: 1000 })) out.push(...(keys as string[]));
  return out;
};

describe('snapshots and the archive (Redis log)', () => {
  let server: RedisProcess;
  let redis: Redis;
  let dir: string;
  beforeAll(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
    dir = await mkdtemp(join(tmpdir(), 'dtm-archive-'));
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const setup = (archive?: TxArchive) => {
    const prefix = `sa-${randomUUID().slice(0, 8)}`;
    const shape = { prefix, partitions: 2 };
    return {
      prefix,
      keys: new RedisKeys(shape),
      log: new RedisEventLog(redis, { ...shape, archive, snapshotEvery: 100 }),
    };
  };

  it('when a stream grows by thousands of retries, then readState folds from a snapshot and equals the whole fold', async () => {
    const { log, keys } = setup();
    let v = await log.append('g', [prepared, { type: 'TransactionSubmitted', data: { at: at(0) } }], NO_STREAM);
    for (let i = 0; i < 25; i++) {
      v = await log.append(
        'g',
        Array.from({ length: 100 }, (_, k) => retry(i * 100 + k)),
        v,
      );
      const { events, version } = await log.read('g');
      const fromSnapshot = await log.readState('g');
      expect(fromSnapshot).toEqual({ state: fold(events), version });
    }
    // A snapshot is stored, near the end: the next read folds only what follows it.
    const snapVersion = Number(await redis.hget(keys.snapshotKey('g'), 'v'));
    expect(snapVersion).toBeGreaterThan(2400);
    // Another build's snapshot (another format) is ignored, not misread.
    await redis.hset(keys.snapshotKey('g'), 'f', 'other-format', 's', '{"status":"none"}');
    const { events } = await log.read('g');
    expect((await log.readState('g')).state).toEqual(fold(events));
  });

  it('when a finished stream is archived, then its Redis keys are gone and reads answer the same from the archive', async () => {
    const archive = new FileArchive(join(dir, 'a1'));
    const { prefix, keys, log } = setup(archive);
    const events: TxEvent[] = [prepared, ...Array.from({ length: 150 }, (_, i) => retry(i))];
    await log.append('done-1', events, NO_STREAM);
    const before = { read: await log.read('done-1'), state: await log.readState('done-1') };
    expect(await redis.exists(keys.snapshotKey('done-1'))).toBe(1);
    const due = keys.archiveDueKey(keys.partitionOf('done-1'));
    await redis.zadd(due, 1000, 'done-1');

    const archiver = new RedisArchiver(redis, archive, { prefix, partitions: 2 });
    expect(await archiver.archiveDue(2000)).toBe(1);
    expect((await keysOf(redis, prefix)).filter((k) => k.includes('done-1') && !k.includes(':lease:'))).toEqual([]);
    expect(await redis.zcard(due)).toBe(0);
    expect(await log.read('done-1')).toEqual(before.read);
    expect(await log.readState('done-1')).toEqual(before.state);
    // The catalog lists it once, from the archive.
    const ids: string[] = [];
    for await (const page of log.streamIds({ archived: true })) ids.push(...page);
    expect(ids.filter((id) => id === 'done-1')).toEqual(['done-1']);

    // A new stream under its gid is refused as a conflict, both through the archive and through the marker.
    await expect(log.append('done-1', [prepared], NO_STREAM)).rejects.toBeInstanceOf(VersionConflict);
    const noArchive = new RedisEventLog(redis, { prefix, partitions: 2 });
    await expect(noArchive.append('done-1', [prepared], NO_STREAM)).rejects.toBeInstanceOf(VersionConflict);
    expect(await redis.exists(keys.streamKey('done-1'))).toBe(0);
  });

  it('when the archiver crashes after writing the archive and before dropping the stream, then nothing is lost and the next run finishes', async () => {
    const archive = new FileArchive(join(dir, 'a2'));
    const { prefix, keys, log } = setup(archive);
    const events: TxEvent[] = [prepared, ...Array.from({ length: 20 }, (_, i) => retry(i))];
    await log.append('done-2', events, NO_STREAM);
    const before = await log.read('done-2');
    await redis.zadd(keys.archiveDueKey(keys.partitionOf('done-2')), 1000, 'done-2');

    // The archive write completes (durably), then the process "dies" before the drop.
    const crashing: TxArchive = {
      put: async (gid, raw) => {
        await archive.put(gid, raw);
        throw new Error('crash');
      },
      get: (gid) => archive.get(gid),
      has: (gid) => archive.has(gid),
      scan: () => archive.scan(),
    };
    await expect(new RedisArchiver(redis, crashing, { prefix, partitions: 2 }).archiveDue(2000)).rejects.toThrow(
      'crash',
    );
    // Both copies, reading the same; still due.
    expect(await redis.llen(keys.streamKey('done-2'))).toBe(21);
    expect(await archive.get('done-2')).toEqual(before.events);
    expect(await log.read('done-2')).toEqual(before);
    const ids: string[] = [];
    for await (const page of log.streamIds({ archived: true })) ids.push(...page);
    expect(ids.filter((id) => id === 'done-2')).toEqual(['done-2']);

    // A crash in the middle of the write leaves only a stray temporary file, and the stream.
    const midWrite: TxArchive = { ...crashing, put: async () => Promise.reject(new Error('disk full')) };
    await expect(new RedisArchiver(redis, midWrite, { prefix, partitions: 2 }).archiveDue(2000)).rejects.toThrow();
    expect(await log.read('done-2')).toEqual(before);

    // The next run completes the move.
    expect(await new RedisArchiver(redis, archive, { prefix, partitions: 2 }).archiveDue(2000)).toBe(1);
    expect(await redis.exists(keys.streamKey('done-2'))).toBe(0);
    expect(await log.read('done-2')).toEqual(before);
  });

  it('when a stream changed after it was read for archiving, then it is not dropped and stays due', async () => {
    const archive = new FileArchive(join(dir, 'a3'));
    const { prefix, keys, log } = setup(archive);
    const v = await log.append('late', [prepared], NO_STREAM);
    const due = keys.archiveDueKey(keys.partitionOf('late'));
    await redis.zadd(due, 1000, 'late');
    const racing: TxArchive = {
      ...archive,
      get: (gid) => archive.get(gid),
      has: (gid) => archive.has(gid),
      scan: () => archive.scan(),
      put: async (gid, raw) => {
        await archive.put(gid, raw);
        await log.append('late', [retry(1)], v); // someone appended meanwhile
      },
    };
    expect(await new RedisArchiver(redis, racing, { prefix, partitions: 2 }).archiveDue(2000)).toBe(0);
    expect(await redis.llen(keys.streamKey('late'))).toBe(2);
    expect(await redis.zscore(due, 'late')).toBe('1000');
    expect((await log.read('late')).events).toHaveLength(2);
  });

  it('archive files are whole gzip files named by hash, with no temporary leftovers after a clean write', async () => {
    const archive = new FileArchive(join(dir, 'a4'));
    await archive.put('gid with spaces/and:colons', [JSON.stringify(prepared)]);
    await archive.put('gid with spaces/and:colons', [JSON.stringify(prepared)]); // again: replaced, same content
    expect(await archive.get('gid with spaces/and:colons')).toEqual([prepared]);
    const path = archive.pathOf('gid with spaces/and:colons');
    const files = await readdir(join(path, '..'));
    expect(files).toEqual([path.split('/').at(-1)]);
    expect(await archive.get('never archived')).toBeNull();
  });
});
