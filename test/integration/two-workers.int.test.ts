import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisEventLog } from '@dtm-ts/adapters';
import type { TxEvent } from '@dtm-ts/domain';
import { startRedis, type RedisProcess } from '@dtm-ts/testing';
import { startBranchPeer, type BranchPeer } from '../peers/http-branch-peer';
import { passQueueName, spawnRole, stopAll, type RoleProcess } from '../support/processes';
import { dtmClient, sagaBody, uniqueGid, type DtmClient } from '../support/tm-harness';

let redis: RedisProcess | undefined;
let peer: BranchPeer | undefined;
let client: Redis | undefined;
const procs: RoleProcess[] = [];

afterAll(async () => {
  await stopAll(procs, 'SIGKILL');
  client?.disconnect();
  await peer?.close();
  await redis?.kill();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

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

const waitAllFinal = async (
  dtm: DtmClient,
  gids: readonly string[],
  timeoutMs: number,
): Promise<Map<string, string>> => {
  const statuses = new Map<string, string>(gids.map((g) => [g, 'unknown']));
  const deadline = Date.now() + timeoutMs;
  let open = [...gids];
  for (let round = 0; open.length && (round === 0 || Date.now() < deadline); round++) {
    for (let i = 0; i < open.length; i += 25) {
      await Promise.all(
        open.slice(i, i + 25).map(async (gid) => {
          const q = await dtm.query(gid);
          statuses.set(gid, (q.transaction?.status as string | undefined) ?? 'none');
        }),
      );
    }
    open = open.filter((g) => !['succeed', 'failed'].includes(statuses.get(g)!));
    if (open.length) await sleep(200);
  }
  return statuses;
};

describe('two workers', () => {
  it('when two workers share one Redis, then each saga is driven to one end and no branch is double-completed', async () => {
    const SAGAS = 300;
    redis = await startRedis();
    peer = await startBranchPeer();
    const p = peer;
    const prefix = `two${randomUUID().slice(0, 8)}`;
    const env = { REDIS_URL: redis.url, KEY_PREFIX: prefix, LOG_PARTITIONS: '4' };
    // One at a time, so that each worker's readiness is told apart from the other's.
    procs.push(await spawnRole('api', env));
    procs.push(await spawnRole('worker', env));
    procs.push(await spawnRole('worker', env));
    const dtm = dtmClient(procs[0]!.url);

    // Which BullMQ worker holds each pass: the lock of an active job holds its worker's token, `<worker id>:<n>`.
    client = new Redis(redis.url, { maxRetriesPerRequest: 3 });
    const redisClient = client;
    const queueKey = `bull:${passQueueName(prefix)}`;
    const jobsByWorker = new Map<string, Set<string>>();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const active = await redisClient.lrange(`${queueKey}:active`, 0, -1);
        if (active.length) {
          const tokens = await redisClient.mget(active.map((id) => `${queueKey}:${id}:lock`));
          active.forEach((jobId, i) => {
            const worker = tokens[i]?.split(':')[0];
            if (!worker) return;
            if (!jobsByWorker.has(worker)) jobsByWorker.set(worker, new Set());
            jobsByWorker.get(worker)!.add(jobId);
          });
        }
        await sleep(20);
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
    const callCounts = new Map<string, Record<string, number>>();
    for (const c of p.calls) {
      const [gid, branch] = c.path.split('/') as [string, string];
      const counts = callCounts.get(gid) ?? {};
      counts[branch] = (counts[branch] ?? 0) + 1;
      callCounts.set(gid, counts);
    }
    const wrongCalls = sagas
      .filter((s) => JSON.stringify(callCounts.get(s.gid)) !== JSON.stringify(expectedEnd[s.kind].calls))
      .map((s) => `${s.gid}: ${JSON.stringify(callCounts.get(s.gid))}`);
    expect(wrongCalls).toEqual([]);

    // The log: no branch completed twice, and exactly one terminal event, the one the script implies.
    const log = new RedisEventLog(redisClient, { prefix, partitions: 4 });
    const problems: string[] = [];
    for (const s of sagas) {
      const { events } = await log.read(s.gid);
      const succeeded = new Map<string, number>();
      for (const e of events as TxEvent[])
        if (e.type === 'BranchSucceeded') {
          const key = `${e.data.branchId}/${e.data.op}`;
          succeeded.set(key, (succeeded.get(key) ?? 0) + 1);
        }
      const twice = [...succeeded].filter(([, n]) => n > 1).map(([k]) => k);
      if (twice.length) problems.push(`${s.gid}: ${twice.join(', ')} succeeded more than once`);
      const terminal = events
        .filter((e) => e.type === 'TransactionSucceeded' || e.type === 'TransactionFailed')
        .map((e) => e.type);
      const want = expectedEnd[s.kind].status === 'succeed' ? 'TransactionSucceeded' : 'TransactionFailed';
      if (terminal.length !== 1 || terminal[0] !== want)
        problems.push(`${s.gid}: terminal events ${JSON.stringify(terminal)}, want one ${want}`);
    }
    expect(problems).toEqual([]);

    // Both workers drove passes.
    const perWorker = [...jobsByWorker.values()].map((jobs) => jobs.size);
    console.log(
      `two workers: ${SAGAS} sagas final ${allFinalMs} ms after the first submit; passes seen active per worker: ${JSON.stringify(perWorker)}`,
    );
    expect(perWorker).toHaveLength(2);
    for (const n of perWorker) expect(n).toBeGreaterThanOrEqual(10);
  });
});
