import { randomUUID } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRedis, type RedisProcess } from '@dtm-ts/testing';
import { BullPassScheduler, passJobId } from '../../shared/adapters/src/bullmq/pass-scheduler';
import type { PassJobData } from '@dtm-ts/ports';

describe('BullPassScheduler', () => {
  let redis: RedisProcess;
  let queue: Queue<PassJobData>;
  let scheduler: BullPassScheduler;

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  beforeEach(() => {
    queue = new Queue<PassJobData>(`passes-${randomUUID()}`, { connection: { host: '127.0.0.1', port: redis.port } });
    scheduler = new BullPassScheduler(queue);
  });
  afterEach(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
  });

  it('when a pass is asked for later, then one delayed pass job waits with that delay', async () => {
    const at = Date.now() + 5_000;
    await scheduler.schedule('gid-1', at, 'v3');

    const job = await queue.getJob(passJobId('gid-1', 'v3'));
    expect(job?.name).toBe('pass');
    expect(job?.data).toEqual({ gid: 'gid-1', at });
    expect(job?.opts.delay).toBeGreaterThan(4_500);
    expect(job?.opts.delay).toBeLessThanOrEqual(5_000);
    expect(job?.opts).toMatchObject({ attempts: 5, removeOnComplete: true, removeOnFail: true });
    expect(await job?.getState()).toBe('delayed');
  });

  it('when a pass is asked for in the past, then it waits with no delay', async () => {
    await scheduler.schedule('gid-2', Date.now() - 60_000, 'v1');

    const job = await queue.getJob(passJobId('gid-2', 'v1'));
    expect(job?.opts.delay).toBe(0);
    expect(await job?.getState()).toBe('waiting');
  });

  it('when the same gid and key are scheduled twice, then one job remains, the first one', async () => {
    const first = Date.now() + 10_000;
    await scheduler.schedule('gid-3', first, 'v7');
    await scheduler.schedule('gid-3', Date.now(), 'v7');

    const counts = await queue.getJobCounts('waiting', 'delayed', 'active', 'prioritized');
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(1);
    expect((await queue.getJob(passJobId('gid-3', 'v7')))?.data.at).toBe(first);
  });

  it('when the key differs, then both passes are kept', async () => {
    await scheduler.schedule('gid-4', Date.now() + 10_000, 'v1');
    await scheduler.schedule('gid-4', Date.now() + 10_000, 'v2');

    expect(await queue.getDelayedCount()).toBe(2);
  });

  it("when gid and key contain ':' and '/', then the job is added under an escaped id", async () => {
    const gid = 'tenant:a/b:c.d';
    await scheduler.schedule(gid, Date.now() + 10_000, 'retry:2');

    const id = passJobId(gid, 'retry:2');
    expect(id).not.toContain(':');
    expect(id).not.toContain('/');
    expect((await queue.getJob(id))?.data.gid).toBe(gid);
  });

  it('when gid/key pairs would join to the same text, then their ids differ', () => {
    expect(passJobId('a.b', 'c')).not.toBe(passJobId('a', 'b.c'));
    expect(passJobId('a', 'x:1')).not.toBe(passJobId('a', 'x%3A1'));
  });

  it('when a pass has completed, then the same key can be scheduled again', async () => {
    const done: string[] = [];
    const worker = new Worker<PassJobData>(queue.name, async (job) => void done.push(job.data.gid), {
      connection: { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null },
    });
    try {
      await scheduler.schedule('gid-5', Date.now(), 'v1');
      await expect.poll(() => done.length, { timeout: 5_000 }).toBe(1);
      await expect.poll(async () => queue.getJob(passJobId('gid-5', 'v1')), { timeout: 5_000 }).toBeUndefined();

      await scheduler.schedule('gid-5', Date.now(), 'v1');
      await expect.poll(() => done.length, { timeout: 5_000 }).toBe(2);
    } finally {
      await worker.close();
    }
  });
});
