import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisEventLog } from '@dtm-ts/adapters';
import { startRedis, type RedisProcess } from '@dtm-ts/testing';
import { startBranchPeer, type BranchPeer } from '../peers/http-branch-peer';
import { passQueueName, spawnRole, stopAll, type RoleProcess } from '../support/processes';
import { dtmClient, sagaBody, uniqueGid, waitAllFinal, type DtmClient } from '../support/tm-harness';
import { pause, waitFor } from '../support/wait';

// One Redis, one API and two workers for the file; each test has its own gids.
let redis: RedisProcess;
let peer: BranchPeer;
let client: Redis;
let dtm: DtmClient;
let log: RedisEventLog;
let queueKey: string;
let workerA: RoleProcess;
const procs: RoleProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
  peer = await startBranchPeer();
  const prefix = `two${randomUUID().slice(0, 8)}`;
  const env = { REDIS_URL: redis.url, KEY_PREFIX: prefix, LOG_PARTITIONS: '4' };
  // The workers one after the other, so that each one's readiness is told apart from the other's.
  const api = await spawnRole('api', env);
  procs.push(api);
  workerA = await spawnRole('worker', env);
  procs.push(workerA);
  procs.push(await spawnRole('worker', env));
  dtm = dtmClient(api.url);
  client = new Redis(redis.url, { maxRetriesPerRequest: 3 });
  log = new RedisEventLog(client, { prefix, partitions: 4 });
  queueKey = `bull:${passQueueName(prefix)}`;
});

afterAll(async () => {
  await stopAll(procs, 'SIGKILL');
  client?.disconnect();
  await peer?.close();
  await redis?.kill();
});

/** What a saga's peer is scripted to do, and so how the saga must end. */
type Kind = 'ok' | 'refused' | 'ongoing-once';
const expectedEnd: Record<Kind, { status: string; calls: Record<string, number> }> = {
  // Both actions succeed: each is called once, nothing is compensated.
  ok: { status: 'succeed', calls: { a0: 1, a1: 1 } },
  // Step 2 answers 409 (FAILURE): both steps are compensated, once each, and the saga fails.
  refused: { status: 'failed', calls: { a0: 1, a1: 1, c1: 1, c0: 1 } },
  // Step 2 answers 425 (ONGOING) once, then 200: it is called again after the retry interval.
  'ongoing-once': { status: 'succeed', calls: { a0: 1, a1: 2 } },
};
const kindOf = (i: number): Kind => (i % 10 === 3 ? 'refused' : i % 10 === 7 ? 'ongoing-once' : 'ok');

/**
 * Which BullMQ worker holds each active pass: the lock of an active job holds its worker's token,
 * `<worker id>:<n>` (bullmq 5, Worker.run). Returns job id → worker id.
 */
const activePasses = async (): Promise<Map<string, string>> => {
  const active = await client.lrange(`${queueKey}:active`, 0, -1);
  if (active.length === 0) return new Map();
  const tokens = await client.mget(active.map((id) => `${queueKey}:${id}:lock`));
  const held = new Map<string, string>();
  active.forEach((jobId, i) => {
    const worker = tokens[i]?.split(':')[0];
    if (worker) held.set(jobId, worker);
  });
  return held;
};

/** Problems in the log of `gid`: a branch that succeeded more than once, or not exactly one terminal event `want`. */
const logProblems = async (gid: string, want: 'TransactionSucceeded' | 'TransactionFailed'): Promise<string[]> => {
  const { events } = await log.read(gid);
  const succeeded = new Map<string, number>();
  for (const e of events)
    if (e.type === 'BranchSucceeded') {
      const key = `${e.data.branchId}/${e.data.op}`;
      succeeded.set(key, (succeeded.get(key) ?? 0) + 1);
    }
  const problems = [...succeeded].filter(([, n]) => n > 1).map(([k, n]) => `${gid}: ${k} succeeded ${n} times`);
  const terminal = events
    .filter((e) => e.type === 'TransactionSucceeded' || e.type === 'TransactionFailed')
    .map((e) => e.type);
  if (terminal.length !== 1 || terminal[0] !== want)
    problems.push(`${gid}: terminal events ${JSON.stringify(terminal)}, want one ${want}`);
  return problems;
};

const countBy = <T>(items: Iterable<T>): Map<T, number> => {
  const m = new Map<T, number>();
  for (const x of items) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
};

/** How often the peer was called on each branch path of each gid: gid → { a0: n, a1: n, c1: n, … }. */
const callCounts = (p: BranchPeer): Map<string, Record<string, number>> => {
  const counts = new Map<string, Record<string, number>>();
  for (const c of p.calls) {
    const [gid, branch] = c.path.split('/') as [string, string];
    const of = counts.get(gid) ?? {};
    of[branch] = (of[branch] ?? 0) + 1;
    counts.set(gid, of);
  }
  return counts;
};

describe('two workers', () => {
  it('when two workers share one Redis, then each saga is driven to one end and no branch is double-completed', async () => {
    const SAGAS = 300;
    const p = peer;
    const jobsByWorker = new Map<string, Set<string>>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        for (const [jobId, worker] of await activePasses()) {
          if (!jobsByWorker.has(worker)) jobsByWorker.set(worker, new Set());
          jobsByWorker.get(worker)!.add(jobId);
        }
        await pause(20);
      }
    })();

    const sagas = Array.from({ length: SAGAS }, (_, i) => {
      const kind = kindOf(i);
      const gid = uniqueGid(kind);
      const delay = (): number => 30 + Math.floor(Math.random() * 41);
      p.script(`${gid}/a0`, [{ status: 200, delayMs: delay() }]);
      if (kind === 'refused') p.script(`${gid}/a1`, [{ status: 409, delayMs: delay() }]);
      else if (kind === 'ongoing-once') p.script(`${gid}/a1`, [{ status: 425, delayMs: delay() }, 200]);
      else p.script(`${gid}/a1`, [{ status: 200, delayMs: delay() }]);
      const steps = [0, 1].map((s) => ({ action: p.url(`${gid}/a${s}`), compensate: p.url(`${gid}/c${s}`) }));
      return { gid, kind, body: sagaBody(gid, steps) };
    });

    const t0 = Date.now();
    for (let i = 0; i < SAGAS; i += 30) {
      const res = await Promise.all(sagas.slice(i, i + 30).map((s) => dtm.post('/submit', s.body)));
      expect(res.map((r) => r.status)).toEqual(res.map(() => 200));
    }
    const statuses = await waitAllFinal(
      dtm,
      sagas.map((s) => s.gid),
      40_000,
    );
    const allFinalMs = Date.now() - t0;
    sampling = false;
    await sampler;

    // Each saga ended as its script implies, with each branch called as often as the script implies.
    const wrongEnds = sagas
      .filter((s) => statuses.get(s.gid) !== expectedEnd[s.kind].status)
      .map((s) => `${s.gid}: ${statuses.get(s.gid)}`);
    expect(wrongEnds).toEqual([]);
    const calls = callCounts(p);
    const wrongCalls = sagas
      .filter((s) => JSON.stringify(calls.get(s.gid)) !== JSON.stringify(expectedEnd[s.kind].calls))
      .map((s) => `${s.gid}: ${JSON.stringify(calls.get(s.gid))}`);
    expect(wrongCalls).toEqual([]);

    // The log: no branch completed twice, and exactly one terminal event, the one the script implies.
    const problems: string[] = [];
    for (const s of sagas)
      problems.push(
        ...(await logProblems(
          s.gid,
          expectedEnd[s.kind].status === 'succeed' ? 'TransactionSucceeded' : 'TransactionFailed',
        )),
      );
    expect(problems).toEqual([]);

    // Both workers drove passes.
    const perWorker = [...jobsByWorker.values()].map((jobs) => jobs.size);
    console.log(
      `two workers: ${SAGAS} sagas final ${allFinalMs} ms after the first submit; passes seen active per worker: ${JSON.stringify(perWorker)}`,
    );
    expect(perWorker).toHaveLength(2);
    for (const n of perWorker) expect(n).toBeGreaterThanOrEqual(10);
  });

  it('when a worker pauses past its pass locks and resumes, then the other takes its passes over and no branch is double-completed', async () => {
    const SAGAS = 150;
    const p = peer;
    const sagas = Array.from({ length: SAGAS }, () => {
      const gid = uniqueGid('pause');
      const steps = [0, 1].map((s) => ({ action: p.url(`${gid}/a${s}`), compensate: p.url(`${gid}/c${s}`) }));
      for (const s of [0, 1])
        p.script(`${gid}/a${s}`, [{ status: 200, delayMs: 100 + Math.floor(Math.random() * 201) }]);
      return { gid, body: sagaBody(gid, steps) };
    });
    const submitStatuses: number[] = [];
    const submitting = (async () => {
      for (let i = 0; i < SAGAS; i += 10) {
        const res = await Promise.all(sagas.slice(i, i + 10).map((s) => dtm.post('/submit', s.body)));
        submitStatuses.push(...res.map((r) => r.status));
        await pause(100);
      }
    })();

    // Pause worker A (SIGSTOP: a GC pause, a frozen VM) once both workers hold passes, for longer than the
    // locks (JOB_LOCK_MS=2000): worker B takes its passes over while A still holds them in memory.
    const eachHoldsFive = (held: Map<string, string>): boolean => {
      const perWorker = [...countBy(held.values()).values()];
      return perWorker.length === 2 && Math.min(...perWorker) >= 5;
    };
    const before = await waitFor(
      async () => {
        const held = await activePasses();
        return eachHoldsFive(held) && held;
      },
      'the two workers holding 5 passes each at the same time',
      { interval: 10 },
    );
    process.kill(workerA.pid, 'SIGSTOP');
    let takenOver = 0;
    try {
      const pausedUntil = Date.now() + 5_000;
      const seen = new Set<string>();
      while (Date.now() < pausedUntil) {
        for (const [jobId, worker] of await activePasses())
          if (before.has(jobId) && before.get(jobId) !== worker && !seen.has(jobId)) {
            seen.add(jobId);
            takenOver++;
          }
        await pause(50);
      }
    } finally {
      process.kill(workerA.pid, 'SIGCONT');
    }
    await submitting;
    expect(submitStatuses.filter((s) => s !== 200)).toEqual([]);
    const statuses = await waitAllFinal(
      dtm,
      sagas.map((s) => s.gid),
      40_000,
    );

    const calls = callCounts(p);
    const repeated = sagas.filter((s) => Object.values(calls.get(s.gid) ?? {}).some((n) => n > 1)).length;
    console.log(
      `worker pause: ${takenOver} passes taken over by the other worker while worker A was stopped; ` +
        `${repeated} sagas had an action called twice`,
    );
    // The pause really made two drivers of some transactions.
    expect(takenOver).toBeGreaterThan(0);
    expect([...statuses.values()].filter((s) => s !== 'succeed')).toEqual([]);
    const problems: string[] = [];
    for (const s of sagas) problems.push(...(await logProblems(s.gid, 'TransactionSucceeded')));
    expect(problems).toEqual([]);
    // No compensation; each action ran, at most twice (once per driver).
    const wrongCalls = sagas
      .map((s) => ({ gid: s.gid, c: calls.get(s.gid) ?? {} }))
      .filter(({ c }) => Object.keys(c).sort().join() !== 'a0,a1' || Object.values(c).some((n) => n > 2))
      .map(({ gid, c }) => `${gid}: ${JSON.stringify(c)}`);
    expect(wrongCalls).toEqual([]);
    expect(workerA.running).toBe(true);
  });
});
