import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_OPTIONS,
  sagaBranchId,
  type BranchDef,
  type BranchOutcome,
  type TransDefinition,
} from '@dtm-ts/domain';
import type { BranchRequest } from '@dtm-ts/ports';
import { RedisEventLog, RedisPassLease, RedisReadModel } from '@dtm-ts/adapters';
import { Driver } from '@dtm-ts/engine';
import { useRedisServer } from '../support/redis-target';

const fx = useRedisServer();

const saga = (gid: string): { definition: TransDefinition; branches: BranchDef[] } => {
  const steps = [0, 1].map((i) => ({ action: `http://rm/a${i}`, compensate: `http://rm/c${i}` }));
  return {
    definition: {
      gid,
      transType: 'saga',
      protocol: 'http',
      steps,
      payloads: ['', ''],
      customData: '',
      queryPrepared: '',
      options: DEFAULT_OPTIONS,
      ordering: { concurrent: false, orders: {} },
      delayS: 0,
    },
    branches: steps.flatMap((s, i): BranchDef[] => [
      { branchId: sagaBranchId(i), op: 'compensate', url: s.compensate, data: '' },
      { branchId: sagaBranchId(i), op: 'action', url: s.action, data: '' },
    ]),
  };
};

/** A driver on the Redis log as a process runs it; `call` answers its branch calls. */
const driverOn = (
  shape: { prefix: string },
  call: (req: BranchRequest) => Promise<BranchOutcome>,
  conn: Redis = fx.redis,
) =>
  new Driver({
    log: new RedisEventLog(conn, shape),
    transport: { call },
    scheduler: { schedule: () => Promise.resolve() },
    clock: { now: () => Date.now() },
    policy: { retryIntervalS: 10, timeoutToFailS: 35, backoffCapS: 60 },
    requestTimeoutS: 3,
    lease: new RedisPassLease(conn, shape),
    leaseTtlMs: 500,
    retentionMs: 60_000,
  });

describe('a driver on the Redis log writes the read model with its appends', () => {
  it('when its process dies between a result it recorded nothing for and the next, then the read model converges once another driver moves it', async () => {
    const shape = { prefix: `pd-${randomUUID()}` };
    const readModel = new RedisReadModel(fx.redis, shape);
    const gid = 'g1';
    // The first driver's second call never answers, and its connection is cut then: its process is dead.
    const dyingConn = new Redis(fx.server.url);
    dyingConn.on('error', () => undefined);
    const dying = driverOn(
      shape,
      (req) => {
        if (req.url.endsWith('/a0')) return Promise.resolve({ kind: 'success' });
        dyingConn.disconnect();
        return new Promise<BranchOutcome>(() => {});
      },
      dyingConn,
    );
    await dying.execute(gid, (now) => ({ type: 'SubmitGlobalTransaction', data: saga(gid), metadata: { now } }));
    void dying.runPass(gid);
    const log = new RedisEventLog(fx.redis, shape);
    await expect.poll(async () => (await log.read(gid)).version, { timeout: 10_000 }).toBe(2);

    // The result of a0 is in the log; the read model still shows the submit, due for the sweep.
    expect(await readModel.get(gid)).toMatchObject({ status: 'submitted' });
    const [due] = await readModel.overdue(Date.now() + 60_000, 10);
    expect(due).toMatchObject({ gid, version: 1 });

    // Another process's pass, once the lease lapsed, calls a1 again and records the end.
    const calls: string[] = [];
    const other = driverOn(shape, (req) => {
      calls.push(req.url);
      return Promise.resolve({ kind: 'success' });
    });
    await expect
      .poll(async () => (await other.runPass(gid)).state.status, { timeout: 10_000, interval: 200 })
      .toBe('succeed');
    expect(calls).toEqual(['http://rm/a1']);
    expect(await readModel.get(gid)).toMatchObject({ status: 'succeed' });
    expect(await readModel.unfinishedCount()).toBe(0);
    // Its lease went with the last append.
    expect(
      await fx.redis.exists(`${shape.prefix}:{p${new RedisEventLog(fx.redis, shape).partitionOf(gid)}}:lease:${gid}`),
    ).toBe(0);
  });
});
