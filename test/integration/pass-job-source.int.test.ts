import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { BullPassJobSource } from '@dtm-ts/adapters';
import type { PassJobData } from '@dtm-ts/ports';
import { startRedis, type RedisProcess } from '@dtm-ts/testing';
import { waitFor } from '../support/wait';

/** BullPassJobSource's close: bounded, whatever its jobs or its Redis do. */
describe('BullPassJobSource close', () => {
  let redis: RedisProcess | undefined;
  let queue: Queue<PassJobData> | undefined;
  afterEach(async () => {
    await queue?.close();
    await redis?.stop();
    queue = redis = undefined;
  });

  const setUp = async () => {
    redis = await startRedis();
    const name = `passes-${randomUUID()}`;
    const connection = { host: '127.0.0.1', port: redis.port };
    queue = new Queue<PassJobData>(name, { connection });
    const errors: string[] = [];
    const source = new BullPassJobSource({
      queueNames: [name],
      connection,
      concurrency: 2,
      lockMs: 30_000,
      closeGraceMs: 300,
      onError: (err) => errors.push(err.message),
    });
    return { source, errors, queue };
  };

  it('when a pass job never finishes, then close returns after the grace, says so, and the job stays active for another worker', async () => {
    const { source, errors, queue } = await setUp();
    const started: string[] = [];
    const consumer = source.consume(async (job) => {
      started.push(job.gid);
      await new Promise(() => undefined);
    });
    await queue.add('pass', { gid: 'stuck', at: Date.now() });
    await waitFor(() => started.length === 1, 'the pass job started');

    const t0 = Date.now();
    await consumer.close();
    const tookMs = Date.now() - t0;

    expect(tookMs).toBeGreaterThanOrEqual(250);
    expect(tookMs).toBeLessThan(5_000);
    expect(errors.join('\n')).toMatch(/did not close within 300 ms/);
    // Its lock still held: the job is another worker's once the lock runs out, as after a crash.
    expect(await queue.getActiveCount()).toBe(1);
  });

  it('when Redis is gone and its connections reconnect in vain, then close still returns', async () => {
    const { source, errors } = await setUp();
    const consumer = source.consume(async () => undefined);
    await new Promise((r) => setTimeout(r, 300));
    await queue!.close();
    queue = undefined;
    await redis!.kill();
    // Closed only once its connections know Redis is gone and are reconnecting: the state BullMQ's close never
    // leaves (closed any earlier, BullMQ may still finish cleanly).
    await waitFor(() => errors.some((e) => /ECONNREFUSED|Connection is closed/.test(e)), 'the worker saw Redis gone');

    const t0 = Date.now();
    await consumer.close();
    expect(Date.now() - t0).toBeLessThan(5_000);
    // BullMQ alone would wait for ever for the QUIT of a connection in `reconnecting`.
    expect(errors.join('\n')).toMatch(/did not close within 300 ms/);
  });

  it('when nothing is running, then close is clean and quick', async () => {
    const { source, errors, queue } = await setUp();
    const done: string[] = [];
    const consumer = source.consume(async (job) => void done.push(job.gid));
    await queue.add('pass', { gid: 'g1', at: Date.now() });
    await waitFor(() => done.length === 1, 'the pass job ran');

    await consumer.close();
    expect(errors.filter((e) => /did not close/.test(e))).toEqual([]);
  });
});
