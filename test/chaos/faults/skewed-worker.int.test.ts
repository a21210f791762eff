import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisProcess } from '@dtm-ts/testing';
import { startBranchPeer, type BranchPeer } from '../../peers/http-branch-peer';
import { bullConnection, spawnRole, stopAll, type RoleProcess } from '../../support/processes';
import { waitFor } from '../../support/wait';
import { dtmClient, liveMarker, sagaBody, uniqueGid, waitAllFinal, type DtmClient } from '../../support/tm-harness';
import { skewedClock, type SkewedClock } from './faketime';

/**
 * An API on the right time and the only worker 30 s ahead (libfaketime): every pass runs on the skewed worker.
 * What README "Clocks and clock skew" says must hold: nothing lost or doubled, retries still happen, and deadlines
 * come early by the skew (a saga whose timeout_to_fail is shorter than the skew aborts before any action).
 */
const SKEW_S = 30;
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

describe('a worker whose clock is 30 s ahead', () => {
  let redis: RedisProcess;
  let peer: BranchPeer;
  let clock: SkewedClock;
  let procs: RoleProcess[] = [];
  let dtm: DtmClient;

  beforeAll(async () => {
    redis = await startRedis();
    peer = await startBranchPeer();
    clock = await skewedClock(SKEW_S);
    const env = { REDIS_URL: redis.url, KEY_PREFIX: `skew${randomUUID().slice(0, 8)}`, LOG_PARTITIONS: '4' };
    // Generous: tsx compiles on first start, and the machine may be busy.
    const ready = { readyTimeoutMs: 90_000 };
    const [api, worker] = await Promise.all([
      spawnRole('api', env, ready),
      spawnRole('worker', { ...env, ...clock.env }, ready),
    ]);
    procs = [api, worker];
    dtm = dtmClient(api.url);
  }, 200_000);
  afterAll(async () => {
    await stopAll(procs, 'SIGKILL');
    await peer?.close();
    await redis?.stop();
    await clock?.cleanup();
  });

  const submit = async (gid: string, body: Record<string, unknown>): Promise<void> => {
    const res = await dtm.post('/submit', body);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  };
  const steps = (gid: string) =>
    [0, 1].map((i) => ({ action: peer.url(`${gid}/a${i}`), compensate: peer.url(`${gid}/c${i}`) }));
  const calls = (path: string): number => peer.callsTo(path).length;

  it('completes sagas (success, failure, retried) exactly once each, with its own clock in the events', async () => {
    const ok = Array.from({ length: 10 }, () => uniqueGid('skew-ok'));
    const failing = Array.from({ length: 5 }, () => uniqueGid('skew-fail'));
    const retried = Array.from({ length: 5 }, () => uniqueGid('skew-retry'));
    for (const gid of failing) peer.script(`${gid}/a1`, [409]);
    for (const gid of retried) peer.script(`${gid}/a0`, [500, 200]);
    const submittedAt = Date.now();
    await Promise.all([
      ...ok.map((gid) => submit(gid, sagaBody(gid, steps(gid), { timeout_to_fail: 300 }))),
      ...failing.map((gid) => submit(gid, sagaBody(gid, steps(gid)))),
      ...retried.map((gid) => submit(gid, sagaBody(gid, steps(gid), { retry_interval: 1 }))),
    ]);

    const statuses = await waitAllFinal(dtm, [...ok, ...failing, ...retried], 60_000);
    for (const gid of [...ok, ...retried]) expect(statuses.get(gid), gid).toBe('succeed');
    for (const gid of failing) expect(statuses.get(gid), gid).toBe('failed');
    // Everything queued before it has been driven: calls still to come would have been made.
    await liveMarker(dtm, peer);

    for (const gid of ok) {
      expect([calls(`${gid}/a0`), calls(`${gid}/a1`), calls(`${gid}/c0`), calls(`${gid}/c1`)], gid).toEqual([
        1, 1, 0, 0,
      ]);
    }
    for (const gid of failing) {
      // The failed action's compensation is called too (DTM compensates every branch up to the failed one).
      expect([calls(`${gid}/a0`), calls(`${gid}/a1`), calls(`${gid}/c0`), calls(`${gid}/c1`)], gid).toEqual([
        1, 1, 1, 1,
      ]);
      const [c0, a1] = [peer.callsTo(`${gid}/c0`)[0]!, peer.callsTo(`${gid}/a1`)[0]!];
      expect(c0.at).toBeGreaterThanOrEqual(a1.at);
    }
    for (const gid of retried) {
      expect([calls(`${gid}/a0`), calls(`${gid}/a1`), calls(`${gid}/c0`)], gid).toEqual([2, 1, 0]);
      // The retry was scheduled for its now + 1 s, on a clock 30 s ahead; it still came after about the interval,
      // not 30 s late: the skewed worker promotes its own delayed job by the same clock.
      const [first, second] = peer.callsTo(`${gid}/a0`);
      expect(second!.at - first!.at).toBeGreaterThanOrEqual(900);
      expect(second!.at - first!.at).toBeLessThan(SKEW_S * 1_000);
    }

    // The worker did run 30 s ahead: the events it appended carry its time, the submit the API's.
    const timeline = (await dtm.get(`/events?gid=${encodeURIComponent(ok[0]!)}`)).body.events as {
      type: string;
      at: string;
    }[];
    const submitAt = Date.parse(timeline[0]!.at);
    const endAt = Date.parse(timeline.at(-1)!.at);
    expect(timeline.at(-1)!.type).toBe('TransactionSucceeded');
    expect(submitAt).toBeGreaterThanOrEqual(submittedAt - 1_000);
    expect(submitAt).toBeLessThan(submittedAt + 20_000);
    expect(endAt - submitAt).toBeGreaterThan((SKEW_S - 5) * 1_000);
  });

  it('promotes every delayed BullMQ job by its own clock: one added for 20 s later by a right clock runs at once', async () => {
    // What makes one skewed worker move every transaction's retries and timeouts (README "Clocks and clock skew"):
    // a plain BullMQ worker under the same skewed clock, and a delayed job added from this (right) process.
    const queueName = `skewq${randomUUID().slice(0, 8)}`;
    const script = `import { Worker } from 'bullmq';
      const w = new Worker(${JSON.stringify(queueName)}, async (job) => { console.log('ran ' + job.name); },
        { connection: ${JSON.stringify(bullConnection(redis.url))} });
      await w.waitUntilReady();
      console.log('ready');`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...clock.env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let said = '';
    child.stdout.on('data', (c: Buffer) => (said += c.toString('utf8')));
    const queue = new Queue(queueName, { connection: bullConnection(redis.url) });
    try {
      await waitFor(() => said.includes('ready'), 'the skewed BullMQ worker', { timeout: 60_000 });
      const added = Date.now();
      await queue.add('later', {}, { delay: 20_000 });
      await waitFor(() => said.includes('ran later'), 'the delayed job run by the skewed worker', { timeout: 30_000 });
      // Due in 20 s by this clock, it ran at once: 30 s ahead, the worker found it 10 s overdue.
      expect(Date.now() - added).toBeLessThan(15_000);
    } finally {
      child.kill('SIGKILL');
      await queue.close();
    }
  });

  it('fires a deadline early by the skew: a saga with timeout_to_fail under it aborts before any action', async () => {
    const gid = uniqueGid('skew-deadline');
    await submit(gid, sagaBody(gid, steps(gid), { timeout_to_fail: 10 }));
    const tx = await dtm.waitFor(gid, 'failed', 60_000);
    expect(String(tx['rollback_reason'])).toMatch(/Timeout after 10 seconds/);
    await liveMarker(dtm, peer);
    expect([calls(`${gid}/a0`), calls(`${gid}/a1`)]).toEqual([0, 0]);
  });
});
