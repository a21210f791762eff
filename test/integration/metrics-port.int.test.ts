import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startRedis, type RedisProcess } from '@dtm-ts/testing';
import { spawnRole, stopAll, type RoleProcess } from '../support/processes';
import { waitFor } from '../support/wait';

let redis: RedisProcess;
const procs: RoleProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await stopAll(procs, 'SIGKILL');
  await redis?.kill();
});

describe('two workers on one host', () => {
  it('when both are given the same METRICS_PORT, then both run and the second serves its metrics on the next free port', async () => {
    const port = await freePort();
    const env = {
      REDIS_URL: redis.url,
      KEY_PREFIX: `mp${randomUUID().slice(0, 8)}`,
      METRICS_PORT: String(port),
      LOG_LEVEL: 'info',
    };
    const first = await spawnRole('worker', env);
    procs.push(first);
    const second = await spawnRole('worker', env);
    procs.push(second);
    expect(first.running && second.running).toBe(true);
    // A worker is ready once its pass queue worker runs; its metrics server starts just after.
    await waitFor(
      () => fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.status === 200),
      'the first worker serving metrics on METRICS_PORT',
    );
    // The same for the second one, on the next free port.
    const moved = await waitFor(
      () =>
        second
          .output()
          .split('\n')
          .map((line) => {
            try {
              return JSON.parse(line) as { msg?: string; port?: number };
            } catch {
              return {};
            }
          })
          .find((l) => l.msg === 'METRICS_PORT is taken; serving metrics on the next free port'),
      () => `the second worker's warning that it moved its metrics port; it wrote:\n${second.output()}`,
    );
    expect(moved.port).toBeGreaterThan(port);
    const res = await fetch(`http://127.0.0.1:${String(moved.port)}/metrics`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('dtm_');
  });
});
