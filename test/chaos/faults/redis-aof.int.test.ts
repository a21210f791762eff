import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@dtm-ts/testing';
import { waitFor } from '../../support/wait';
import { startDurableRedis, type DurableRedis } from './redis-aof';

/** A client that fails a command at once when the connection is gone, so that "acknowledged" means what it says. */
const client = (url: string): Redis => {
  const c = new Redis(url, {
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    lazyConnect: true,
  });
  // The kill shows as a failed command; the connection's own error event would only be noise.
  c.on('error', () => undefined);
  return c;
};

describe('durable Redis (AOF always)', () => {
  let redis: DurableRedis;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    redis = await startDurableRedis({ port });
  });
  afterAll(async () => {
    await redis.stop();
  });

  it('keeps every acknowledged write across a SIGKILL in the middle of a write load, on the same port', async () => {
    expect(redis.port).toBe(port);
    expect(redis.url).toBe(`redis://127.0.0.1:${port}`);
    const writer = client(redis.url);
    await writer.connect();
    const acked: number[] = [];
    let failed = 0;
    // Four writers in parallel, each pushing its own numbers until the connection dies.
    const load = [0, 1, 2, 3].map(async (w) => {
      for (let i = w; ; i += 4) {
        try {
          await writer.rpush('acked', String(i));
          acked.push(i);
        } catch {
          failed++;
          return;
        }
      }
    });
    await waitFor(() => acked.length >= 400, 'some acknowledged writes');
    await redis.kill();
    await Promise.all(load);
    writer.disconnect();
    expect(failed).toBeGreaterThan(0);

    await redis.restart();
    const reader = client(redis.url);
    await reader.connect();
    try {
      const kept = new Set((await reader.lrange('acked', 0, -1)).map(Number));
      const lost = acked.filter((i) => !kept.has(i));
      expect(lost).toEqual([]);
      // A write in flight at the kill may have landed without its answer: at most one per writer.
      expect(kept.size - acked.length).toBeLessThanOrEqual(4);
    } finally {
      reader.disconnect();
    }
  });

  it('restart while running is a crash and a start, with the data kept', async () => {
    const c = client(redis.url);
    await c.connect();
    await c.set('before', 'restart');
    c.disconnect();
    await redis.restart();
    const after = client(redis.url);
    await after.connect();
    try {
      expect(await after.get('before')).toBe('restart');
    } finally {
      after.disconnect();
    }
  });
});
