import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { startRedis } from '@dtm-ts/testing';
import { startBranchPeer, type BranchPeer } from '../peers/http-branch-peer';
import { killedAfterEach } from '../support/crash-cleanup';
import { spawnRole, type RoleProcess } from '../support/processes';
import { dtmClient, sagaBody, uniqueGid, waitAllFinal } from '../support/tm-harness';
import { pause, waitFor } from '../support/wait';
import { keysPerMaster, startRedisTarget, testRedisKind, type RedisTarget } from '../support/redis-target';

// Each test owns its Redis, roles and peer; afterEach releases whatever a test started, even when it failed.
const owned = killedAfterEach<BranchPeer>();

/** A role's environment on `target`: REDIS_URL, or REDIS_CLUSTER_NODES with 12 partitions (4 per master). */
const envFor = (target: RedisTarget | string): Record<string, string> => ({
  ...(typeof target === 'string' ? { REDIS_URL: target } : target.env),
  KEY_PREFIX: `crash${randomUUID().slice(0, 8)}`,
  LOG_PARTITIONS: typeof target !== 'string' && target.kind === 'cluster' ? '12' : '4',
});

/** Starts the Redis of this run (one server, or a 3-master cluster with TEST_REDIS=cluster); afterEach kills it. */
const startTarget = async (): Promise<RedisTarget> => {
  const target = await startRedisTarget(testRedisKind);
  owned.redis = target;
  return target;
};
// A role compiles on start (tsx): on a loaded machine, with a cluster client per pass queue, that can pass 30 s.
const spawn = async (...[role, env, opts]: Parameters<typeof spawnRole>): Promise<RoleProcess> => {
  const p = await spawnRole(role, env, { readyTimeoutMs: 60_000, ...opts });
  owned.procs.push(p);
  return p;
};

/** A two-step saga whose actions answer 200 after `delayMs` each; compensations are left unscripted. */
const scriptedSaga = (p: BranchPeer, label: string, delayMs: () => number) => {
  const gid = uniqueGid(label);
  const steps = [0, 1].map((i) => ({ action: p.url(`${gid}/a${i}`), compensate: p.url(`${gid}/c${i}`) }));
  const delays = steps.map(() => delayMs());
  delays.forEach((d, i) => p.script(`${gid}/a${i}`, [{ status: 200, delayMs: d }]));
  return { gid, body: sagaBody(gid, steps), delays };
};

const countBy = <T>(items: Iterable<T>): Map<T, number> => {
  const m = new Map<T, number>();
  for (const x of items) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
};
const histogram = (m: Map<string, string>): Record<string, number> => Object.fromEntries(countBy(m.values()));

/** Calls the peer received for compensations (the path's last segment is c<i>, or op=compensate). */
const compensationsSeen = (p: BranchPeer) =>
  p.calls.filter((c) => /\/c\d+$/.test(c.path) || c.query.op === 'compensate');

describe('worker crash', () => {
  it('when the worker is SIGKILLed mid-load and another one starts, then every saga ends succeed and no compensation runs', async () => {
    const SAGAS = 200;
    const BATCH = 20;
    const target = await startTarget();
    owned.peer = await startBranchPeer();
    // A long sweep grace keeps the sweep out of this test, even on a loaded machine: here the dead worker's passes
    // are taken over through their expired locks. The sweep racing that takeover is the next test's subject.
    const env: Record<string, string> = { ...envFor(target), SWEEP_GRACE_MS: '30000' };
    const [api, workerA] = await Promise.all([spawn('api', env), spawn('worker', env)]);
    const dtm = dtmClient(api.url);
    const p = owned.peer;

    const sagas = Array.from({ length: SAGAS }, () =>
      scriptedSaga(p, 'crash', () => 50 + Math.floor(Math.random() * 51)),
    );
    const delayOf = new Map<string, number>(
      sagas.flatMap((s) => s.delays.map((d, i) => [`${s.gid}/a${i}`, d] as const)),
    );
    const submitStatuses: number[] = [];
    // Batches of concurrent submits, ~100 ms apart, so that the load is still coming in when the worker dies.
    const submitting = (async () => {
      for (let i = 0; i < sagas.length; i += BATCH) {
        const batch = sagas.slice(i, i + BATCH);
        const res = await Promise.all(batch.map((s) => dtm.post('/submit', s.body)));
        submitStatuses.push(...res.map((r) => r.status));
        await pause(100);
      }
    })();

    // Kill worker A once 30 sagas have had their second action called: by then passes are surely in flight.
    await waitFor(
      () => new Set(p.calls.filter((c) => c.path.endsWith('/a1')).map((c) => c.path)).size >= 30,
      () => `the load never got going; worker output:\n${workerA.output()}`,
      { interval: 5 },
    );
    const killedAt = Date.now();
    await workerA.kill('SIGKILL');
    // Calls that arrived less than their scripted delay before the kill had not been answered: passes in flight.
    const inFlightAtKill = p.calls.filter((c) => c.at + (delayOf.get(c.path) ?? 0) > killedAt).length;

    await submitting;
    expect(submitStatuses.filter((s) => s !== 200)).toEqual([]);
    // With no worker alive nothing moves: this is what finished before the crash.
    const beforeRecovery = await waitAllFinal(
      dtm,
      sagas.map((s) => s.gid),
      0,
    );
    const doneBeforeCrash = [...beforeRecovery.values()].filter((s) => s === 'succeed').length;

    const restartAt = Date.now();
    await spawn('worker', env);
    const workerBReadyAt = Date.now();
    const statuses = await waitAllFinal(
      dtm,
      sagas.map((s) => s.gid),
      40_000,
    );
    const recoveredAt = Date.now();

    const actionCalls = countBy(p.calls.filter((c) => /\/a\d+$/.test(c.path)).map((c) => c.path));
    const repeated = [...actionCalls.entries()].filter(([, n]) => n > 1);
    console.log(
      `worker crash: ${doneBeforeCrash}/${SAGAS} sagas had succeeded and ${inFlightAtKill} branch calls were in flight ` +
        `when worker A was killed; worker B was ready ${workerBReadyAt - restartAt} ms after its start, and every saga ` +
        `had ended ${recoveredAt - killedAt} ms after the kill (${recoveredAt - workerBReadyAt} ms after worker B was ` +
        `ready); ${repeated.length} actions ran more than once`,
    );

    // The crash really came mid-load: some sagas had ended, others had not, and calls were under way.
    expect(doneBeforeCrash).toBeGreaterThan(0);
    expect(doneBeforeCrash).toBeLessThan(SAGAS);
    expect(inFlightAtKill).toBeGreaterThan(0);

    expect(histogram(statuses)).toEqual({ succeed: SAGAS });
    expect(compensationsSeen(p).map((c) => c.path)).toEqual([]);
    // Every action ran. A crash re-calls at most the branch in flight (DESIGN invariant 3): its call was under way,
    // or answered but not yet recorded. So no action ran more than twice, no saga repeated more than one action,
    // and none that had ended before the crash repeated any.
    const callsOf = (gid: string) => [0, 1].map((i) => actionCalls.get(`${gid}/a${i}`) ?? 0);
    expect(sagas.filter((s) => callsOf(s.gid).includes(0)).map((s) => s.gid)).toEqual([]);
    expect(repeated.filter(([, n]) => n > 2)).toEqual([]);
    const repeatingTwice = sagas.filter((s) => callsOf(s.gid).every((n) => n > 1));
    expect(repeatingTwice.map((s) => `${s.gid}: ${JSON.stringify(callsOf(s.gid))}`)).toEqual([]);
    const endedBefore = sagas.filter((s) => beforeRecovery.get(s.gid) === 'succeed');
    expect(endedBefore.filter((s) => callsOf(s.gid).some((n) => n > 1)).map((s) => s.gid)).toEqual([]);

    // On a cluster, the run's keys (streams, feeds, read model, pass queues) are spread over every master.
    const perMaster = await keysPerMaster(target.client(), `*${env['KEY_PREFIX']}*`);
    console.log(`worker crash (${target.kind}): keys per master ${perMaster.join(' / ')}`);
    expect(perMaster.every((n) => n > 0)).toBe(true);
  });

  // The sweep racing a takeover is about the engine, not the store: on one Redis only (it is the slowest test here).
  const sweepTakeover = async (): Promise<void> => {
    const SAGAS = 5;
    const SLOW_MS = 2_000;
    const target = await startTarget();
    owned.peer = await startBranchPeer();
    const env = envFor(target); // REQUEST_TIMEOUT=3, SWEEP_GRACE_MS=2000: overdue 5 s after the last append
    const [api, workerA] = await Promise.all([spawn('api', env), spawn('worker', env)]);
    const dtm = dtmClient(api.url);
    const p = owned.peer;
    // Step 1 answers at once, step 2 takes 2 s: the crash comes while step 2 is in flight, step 1 recorded.
    const sagas = Array.from({ length: SAGAS }, () => {
      const gid = uniqueGid('slow');
      const steps = [0, 1].map((i) => ({ action: p.url(`${gid}/a${i}`), compensate: p.url(`${gid}/c${i}`) }));
      p.script(`${gid}/a1`, [{ status: 200, delayMs: SLOW_MS }]);
      return { gid, body: sagaBody(gid, steps) };
    });
    for (const s of sagas) expect((await dtm.post('/submit', s.body)).status).toBe(200);
    await waitFor(
      () => sagas.every((s) => p.callsTo(`${s.gid}/a1`).length > 0),
      () => `step 2 was never called; worker output:\n${workerA.output()}`,
      { interval: 10 },
    );
    // Worker A has recorded step 1's result, and nothing else is appended before step 2 answers. The read model
    // still shows the submit (a result the pass follows at once with its next call records nothing there yet),
    // with the wake time that makes the sweep find the transaction overdue.
    await waitFor(async () => {
      const listed = (await dtm.get('/all?limit=1000')).body.transactions as Record<string, unknown>[];
      for (const s of sagas) {
        const { branches } = await dtm.query(s.gid);
        if (!branches.some((b) => b.branch_id === '01' && b.op === 'action' && b.status === 'succeed')) return false;
        if (listed.find((t) => t.gid === s.gid)?.status !== 'submitted') return false;
      }
      return true;
    }, "step 1's result in the log");
    await workerA.kill('SIGKILL');
    expect(sagas.map((s) => p.callsTo(`${s.gid}/a1`).length)).toEqual(sagas.map(() => 1));

    // The replacement comes late: by then the sweep finds the transactions overdue, while their passes still sit,
    // locked by the dead worker, in BullMQ's active list.
    await pause(6_000);
    await spawn('worker', env);
    const statuses = await waitAllFinal(
      dtm,
      sagas.map((s) => s.gid),
      30_000,
    );
    expect(histogram(statuses)).toEqual({ succeed: SAGAS });
    expect(compensationsSeen(p).map((c) => c.path)).toEqual([]);
    // Worker A's call, then one call by whoever took the pass over (DESIGN invariants 3 and 4).
    const calls = sagas.map((s) => `${s.gid}: ${p.callsTo(`${s.gid}/a1`).length}`);
    expect(calls).toEqual(sagas.map((s) => `${s.gid}: 2`));
  };
  if (testRedisKind === 'single')
    it(
      "when a dead worker's passes are taken over after the sweep found them overdue, then the branch in flight is called again only once",
      sweepTakeover,
    );
});

type Outage = 'kill' | 'stop';

// One Redis restarting under load; on a cluster (TEST_REDIS=cluster) a master's restart is redis-cluster.int.test.ts's.
if (testRedisKind === 'single') describeRedisRestart();

function describeRedisRestart(): void {
  describe('redis restart', () => {
    it.each<{ outage: Outage; roles: 'api+worker' | 'tm' }>([
      { outage: 'kill', roles: 'api+worker' },
      { outage: 'stop', roles: 'tm' },
    ])(
      'when Redis restarts mid-load (AOF, $outage), then nothing acknowledged is lost ($roles)',
      async ({ outage, roles }) => {
        const SUBMITTERS = 4;
        const server = await startRedis({ appendonly: true, appendfsync: 'always' });
        owned.redis = server;
        owned.peer = await startBranchPeer();
        const env = envFor(server.url);
        const [front] =
          roles === 'tm' ? [await spawn('tm', env)] : await Promise.all([spawn('api', env), spawn('worker', env)]);
        const apiUrl = front.url;
        const dtm = dtmClient(apiUrl);
        const p = owned.peer;
        const r = server;

        const acked: string[] = [];
        const unacked: { gid: string; why: string }[] = [];
        let phase: 'before' | 'outage' | 'after' = 'before';
        const ackedIn = { before: 0, outage: 0, after: 0 };
        let loading = true;
        const submitter = async (): Promise<void> => {
          while (loading) {
            const { gid, body } = scriptedSaga(p, `rr-${outage}`, () => 50 + Math.floor(Math.random() * 101));
            try {
              const res = await fetch(`${apiUrl}/api/dtmsvr/submit`, {
                method: 'POST',
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify(body),
                signal: AbortSignal.timeout(5_000),
              });
              const text = await res.text();
              if (res.status === 200) {
                acked.push(gid);
                ackedIn[phase]++;
              } else unacked.push({ gid, why: `${res.status} ${text.slice(0, 200)}` });
            } catch (err) {
              unacked.push({ gid, why: err instanceof Error ? err.message : String(err) });
            }
            await pause(40);
          }
        };
        const submitters = Array.from({ length: SUBMITTERS }, submitter);

        await pause(1_200);
        const ackedBeforeOutage = new Set(acked);
        // Sagas acknowledged whose last action was not called yet: work the outage cuts into.
        const lastAnswered = new Set(p.calls.filter((c) => c.path.endsWith('/a1')).map((c) => c.path.split('/')[0]));
        const unfinishedAtOutage = [...ackedBeforeOutage].filter((g) => !lastAnswered.has(g)).length;
        phase = 'outage';
        const downAt = Date.now();
        if (outage === 'kill') await r.kill();
        else await r.stop();
        // Longer than a pass's lock (JOB_LOCK_MS=2000), so that the locks of passes under way expire meanwhile.
        await pause(2_500);
        await r.start();
        const upAt = Date.now();
        phase = 'after';
        await pause(1_500);
        loading = false;
        await Promise.all(submitters);

        // Everything acknowledged, and everything that exists though its submit was not acknowledged, ends succeed.
        const statuses = await waitAllFinal(dtm, acked, 40_000);
        const unackedStatuses = await waitAllFinal(
          dtm,
          unacked.map((u) => u.gid),
          10_000,
        );
        const compensations = compensationsSeen(p);
        const actionCalls = countBy(p.calls.filter((c) => /\/a\d+$/.test(c.path)).map((c) => c.path));
        const repeated = [...actionCalls.values()].filter((n) => n > 1).length;
        console.log(
          `redis ${outage} (${roles}): ${acked.length} submits acknowledged (${ackedIn.before} before the outage, ` +
            `${ackedIn.outage} during, ${ackedIn.after} after), ${unacked.length} not ` +
            `(${[...countBy(unacked.map((u) => u.why.slice(0, 60))).entries()].map(([w, n]) => `${n}× ${w}`).join('; ') || '-'}); ` +
            `${unfinishedAtOutage} acknowledged sagas were unfinished when Redis went down for ${upAt - downAt} ms; ` +
            `${repeated} actions ran more than once; unacknowledged: ${JSON.stringify(histogram(unackedStatuses))}`,
        );

        expect(ackedBeforeOutage.size).toBeGreaterThan(0);
        expect(unfinishedAtOutage).toBeGreaterThan(0);
        // The TM served again after the restart, not only before it.
        expect(ackedIn.after).toBeGreaterThan(0);
        expect(histogram(statuses)).toEqual({ succeed: acked.length });
        // A submit not acknowledged may or may not have been recorded; recorded ones must not be stranded.
        expect([...unackedStatuses].filter(([, s]) => s !== 'succeed' && s !== 'none')).toEqual([]);
        expect(compensations.map((c) => c.path)).toEqual([]);
        // At-least-once: the outage may make a branch in flight run again, but only that once.
        expect([...actionCalls].filter(([, n]) => n > 2)).toEqual([]);
      },
    );
  });
}
