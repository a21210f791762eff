import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBranchTransport, RedisReadModel } from '@dtm-ts/adapters';
import { loadConfig } from '@dtm-ts/config';
import type { BranchRequest, PassScheduler, TransactionSummary } from '@dtm-ts/ports';
import { createLogger } from '@dtm-ts/telemetry';
import { startRedis, type RedisProcess } from '@dtm-ts/testing';
import { startTm, type RunningTm } from '@dtm-ts/tm';
import { SWEEP_BATCH, sweepOnce } from '@dtm-ts/worker';
import { startBranchPeer, type BranchPeer } from '../peers/http-branch-peer';
import { bullConnection } from '../support/processes';
import { dtmClient, sagaBody, uniqueGid, type DtmClient } from '../support/tm-harness';

/**
 * DESIGN invariant 9: a poison transaction never blocks another. A pass that throws is recorded (PassFailed) and
 * retried with backoff; the recovery sweep reaches every overdue transaction however many others stay overdue.
 */

/** HTTP, except that a call to a `/poison/` URL throws as undici does on a header it cannot send. */
class PoisonTransport extends HttpBranchTransport {
  override async call(req: BranchRequest) {
    if (req.url.includes('/poison/')) {
      throw Object.assign(new TypeError('invalid transfer-encoding header'), { code: 'UND_ERR_INVALID_ARG' });
    }
    return await super.call(req);
  }
}

const POISONED = 600;
const timings = { retryIntervalS: 1, backoffCapS: 10, requestTimeoutS: 3, sweepIntervalMs: 300, sweepGraceMs: 1000 };

let redis: RedisProcess;
let peer: BranchPeer;
let tm: RunningTm;
let dtm: DtmClient;
let prefix: string;

beforeAll(async () => {
  redis = await startRedis();
  peer = await startBranchPeer();
  prefix = `poison${randomUUID().slice(0, 8)}`;
  const config = loadConfig(
    {},
    {
      redisUrl: redis.url,
      port: 0,
      // Not the shared default gRPC port (36790): another TM of the suite may hold it.
      grpcPort: 0,
      host: '127.0.0.1',
      prefix,
      logLevel: 'silent',
      jobLockMs: 3000,
      ...timings,
    },
  );
  tm = await startTm(config, createLogger('silent', 'poison-test'), { transport: new PoisonTransport() });
  dtm = dtmClient(tm.url);
});

afterAll(async () => {
  await tm?.close();
  await peer?.close();
  await redis?.stop();
});

const poisonSaga = (gid: string) =>
  sagaBody(gid, [{ action: peer.url(`poison/${gid}/a0`), compensate: peer.url(`poison/${gid}/c0`) }]);

describe('a poison transaction', () => {
  it('when its pass throws, then PassFailed with the error shows in /query and /events and the metric counts it', async () => {
    const gid = uniqueGid('poison-one');
    expect((await dtm.post('/submit', poisonSaga(gid))).status).toBe(200);
    await expect
      .poll(async () => (await dtm.query(gid)).transaction?.pass_failures, { timeout: 20_000 })
      .toBeGreaterThanOrEqual(1);
    const q = await dtm.query(gid);
    expect(q.transaction).toMatchObject({
      status: 'submitted',
      pass_error: 'TypeError UND_ERR_INVALID_ARG: invalid transfer-encoding header',
    });
    // /query's next attempt is the failure's retry time, not "now".
    expect(Date.parse(q.transaction!.next_cron_time as string)).toBeGreaterThan(
      Date.parse(q.transaction!.update_time as string),
    );
    const timeline = (await dtm.get(`/events?gid=${encodeURIComponent(gid)}`)).body as {
      events: { type: string; outcome?: string; reason?: string; retryAt?: string; text: string }[];
    };
    const failed = timeline.events.find((e) => e.type === 'PassFailed');
    expect(failed).toMatchObject({
      outcome: 'error',
      reason: 'TypeError UND_ERR_INVALID_ARG: invalid transfer-encoding header',
      retryAt: expect.any(String),
    });
    expect(failed!.text).toContain('pass failed: TypeError UND_ERR_INVALID_ARG');
    const metrics = await (await fetch(`${tm.url}/api/metrics`)).text();
    const count = /^dtm_pass_failures_total\{model="saga"\} (\d+)/m.exec(metrics);
    expect(Number(count?.[1])).toBeGreaterThanOrEqual(1);
  });

  it(`when ${POISONED} transactions always throw and another one's pass job is deleted, then the other still ends within the recovery bound`, async () => {
    const poisoned = Array.from({ length: POISONED }, () => uniqueGid('poison'));
    for (let i = 0; i < poisoned.length; i += 50) {
      const res = await Promise.all(poisoned.slice(i, i + 50).map((gid) => dtm.post('/submit', poisonSaga(gid))));
      expect(res.every((r) => r.status === 200)).toBe(true);
    }
    // Every poison transaction has failed at least once (and is retried with backoff, never given up).
    const log = tm.infra.log;
    await expect
      .poll(
        async () => {
          let failedOnce = 0;
          for (const gid of poisoned) {
            if ((await log.read(gid)).events.some((e) => e.type === 'PassFailed')) failedOnce++;
          }
          return failedOnce;
        },
        { timeout: 60_000, interval: 500 },
      )
      .toBe(POISONED);

    // The other one: its first call answers ONGOING; its retry waits 3 s in a delayed pass job, which we delete.
    const gid = uniqueGid('lost');
    peer.script(`${gid}/a0`, [425, 200]);
    const body = sagaBody(gid, [{ action: peer.url(`${gid}/a0`), compensate: peer.url(`${gid}/c0`) }], {
      retry_interval: 3,
    });
    expect((await dtm.post('/submit', body)).status).toBe(200);
    await expect.poll(async () => (await dtm.query(gid)).transaction?.retry_count, { timeout: 20_000 }).toBe(1);
    const queue = new Queue(`${prefix}-passes`, { connection: bullConnection(redis.url) });
    try {
      const mine = async () =>
        (await queue.getJobs(['delayed', 'waiting', 'prioritized'])).filter((j) => j.data?.gid === gid);
      for (const job of await mine()) await job.remove();
      expect(await mine()).toEqual([]);
    } finally {
      await queue.close();
    }
    const deleted = Date.now();
    const retryAt = Date.parse((await dtm.query(gid)).transaction!.next_cron_time as string);

    // README, "Recovery": a transaction with no pending pass job is driven again within SWEEP_GRACE_MS +
    // SWEEP_INTERVAL_MS × (1 + overdue ÷ 500) after it was due, plus the pass itself (a call: REQUEST_TIMEOUT).
    const overdueAtMost = POISONED + 1;
    const boundMs =
      timings.sweepGraceMs +
      timings.sweepIntervalMs * (1 + Math.floor(overdueAtMost / SWEEP_BATCH)) +
      timings.requestTimeoutS * 1000;
    const final = await dtm.waitFor(gid, 'succeed', Math.max(0, retryAt - deleted) + boundMs);
    const ended = Date.parse(final.finish_time as string);
    console.log(
      `poison: ${POISONED} throwing transactions; the one whose pass job was deleted ended ${ended - retryAt} ms after it was due (bound ${boundMs} ms)`,
    );
    expect(ended - retryAt).toBeLessThanOrEqual(boundMs);
    // It was the sweep that brought it back: the retry came after the grace period, not at the retry time.
    const retried = peer.callsTo(`${gid}/a0`)[1]!;
    expect(retried.at - retryAt).toBeGreaterThanOrEqual(timings.sweepGraceMs - 50);
  }, 180_000);
});

describe('recovery sweep fairness', () => {
  it(`when more than ${SWEEP_BATCH} transactions stay overdue for ever, then a later-overdue one is still re-queued within two sweeps`, async () => {
    const rm = new RedisReadModel(tm.infra.redis, { prefix: `fair${randomUUID().slice(0, 8)}`, partitions: 4 });
    const now = Date.now();
    const summary = (gid: string): TransactionSummary => ({
      gid,
      transType: 'saga',
      status: 'submitted',
      createTime: now,
      record: { gid },
    });
    const stuck = Array.from({ length: 600 }, (_, i) => `stuck-${i}`);
    await Promise.all(stuck.map((gid, i) => rm.put(summary(gid), 1, now - 60_000 - i)));
    await rm.put(summary('the-other'), 1, now - 30_000);
    const asked: string[][] = [];
    const scheduler: PassScheduler = {
      schedule: async (gid) => void asked.at(-1)!.push(gid),
    };
    for (let sweep = 0; sweep < 2; sweep++) {
      asked.push([]);
      // The stuck ones never move: their passes are lost again and again, no projection changes their wake time.
      await sweepOnce({ readModel: rm, scheduler, now: () => now + sweep, graceMs: 1000 });
    }
    expect(asked[0]).toHaveLength(SWEEP_BATCH);
    expect(asked[0]).not.toContain('the-other');
    expect(asked[1]).toContain('the-other');
    // Every stuck one was reached too, none twice before all had their turn.
    expect(new Set([...asked[0]!, ...asked[1]!]).size).toBe(601);
  });
});
