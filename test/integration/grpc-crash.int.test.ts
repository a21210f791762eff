import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { startRedis } from '@dtm-ts/testing';
import { startGrpcBranchPeer, type GrpcBranchPeer } from '../peers/grpc-branch-peer';
import { killedAfterEach } from '../support/crash-cleanup';
import { spawnRole, type RoleProcess } from '../support/processes';
import { dtmClient, uniqueGid, waitAllFinal } from '../support/tm-harness';
import { pause, waitFor } from '../support/wait';

// The worker-crash test of crash.int.test.ts with gRPC branches: API and worker are real processes, the RM a
// grpc-js server in this process; the worker is SIGKILLed while calls are in flight over its HTTP/2 channels.
const owned = killedAfterEach<GrpcBranchPeer>();

// Generous: tsx compiles each role on its first start, and 8 helpers share this machine's 2 cores.
const spawn = async (role: Parameters<typeof spawnRole>[0], env: Record<string, string>): Promise<RoleProcess> => {
  const p = await spawnRole(role, env, { readyTimeoutMs: 120_000 });
  owned.procs.push(p);
  return p;
};

const ACTIONS = ['TransOut', 'TransIn'] as const;

/** A two-step gRPC saga whose actions answer OK after a delay each; compensations are left unscripted. */
const scriptedSaga = (p: GrpcBranchPeer, delayMs: () => number) => {
  const gid = uniqueGid('gcrash');
  const delays = ACTIONS.map(() => delayMs());
  ACTIONS.forEach((m, i) => p.script(gid, m, [{ code: 0, delayMs: delays[i] }]));
  const body = {
    gid,
    trans_type: 'saga',
    protocol: 'grpc',
    steps: ACTIONS.map((m) => ({ action: p.url(m), compensate: p.url(`${m}Revert`) })),
    bin_payloads: [Buffer.from([0x08, 30]), Buffer.from([0x08, 31])].map((b) => b.toString('base64')),
  };
  return { gid, body, delays };
};

const countBy = <T>(items: Iterable<T>): Map<T, number> => {
  const m = new Map<T, number>();
  for (const x of items) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
};

describe('worker crash with gRPC branches', () => {
  it('when the worker is SIGKILLed mid-load and another one starts, then every gRPC saga ends succeed and no compensation runs', async () => {
    const SAGAS = 150;
    const BATCH = 15;
    const redis = await startRedis();
    owned.redis = redis;
    owned.peer = await startGrpcBranchPeer();
    const env = {
      REDIS_URL: redis.url,
      KEY_PREFIX: `gcrash${randomUUID().slice(0, 8)}`,
      LOG_PARTITIONS: '4',
      SWEEP_GRACE_MS: '30000', // the dead worker's passes are taken over through their expired locks
    };
    const [api, workerA] = await Promise.all([spawn('api', env), spawn('worker', env)]);
    const dtm = dtmClient(api.url);
    const p = owned.peer;
    const sagas = Array.from({ length: SAGAS }, () => scriptedSaga(p, () => 50 + Math.floor(Math.random() * 51)));
    const delayOf = new Map<string, number>(
      sagas.flatMap((s) => ACTIONS.map((m, i) => [`${s.gid} ${m}`, s.delays[i]!] as const)),
    );
    const keyOf = (c: GrpcBranchPeer['calls'][number]) => `${c.metadata['dtm-gid']} ${c.method.split('/').pop()}`;

    const submitStatuses: number[] = [];
    const submitting = (async () => {
      for (let i = 0; i < sagas.length; i += BATCH) {
        const res = await Promise.all(sagas.slice(i, i + BATCH).map((s) => dtm.post('/submit', s.body)));
        submitStatuses.push(...res.map((r) => r.status));
        await pause(100);
      }
    })();

    // Kill worker A once 25 sagas have had their second action called: passes are surely in flight by then.
    await waitFor(
      () => new Set(p.calls.filter((c) => c.method.endsWith('/TransIn')).map(keyOf)).size >= 25,
      () => `the load never got going; worker output:\n${workerA.output()}`,
      { interval: 5 },
    );
    const killedAt = Date.now();
    await workerA.kill('SIGKILL');
    const inFlightAtKill = p.calls.filter((c) => c.at + (delayOf.get(keyOf(c)) ?? 0) > killedAt).length;

    await submitting;
    expect(submitStatuses.filter((s) => s !== 200)).toEqual([]);
    const gids = sagas.map((s) => s.gid);
    const beforeRecovery = await waitAllFinal(dtm, gids, 0);
    const doneBeforeCrash = [...beforeRecovery.values()].filter((s) => s === 'succeed').length;

    await spawn('worker', env);
    const statuses = await waitAllFinal(dtm, gids, 40_000);
    const recoveredAt = Date.now();

    const actionCalls = countBy(p.calls.filter((c) => !c.method.endsWith('Revert')).map(keyOf));
    const repeated = [...actionCalls.entries()].filter(([, n]) => n > 1);
    console.log(
      `worker crash (gRPC): ${doneBeforeCrash}/${SAGAS} sagas had succeeded and ${inFlightAtKill} gRPC calls were in ` +
        `flight when worker A was killed; every saga had ended ${recoveredAt - killedAt} ms after the kill; ` +
        `${repeated.length} actions ran more than once`,
    );

    expect(doneBeforeCrash).toBeGreaterThan(0);
    expect(doneBeforeCrash).toBeLessThan(SAGAS);
    expect(inFlightAtKill).toBeGreaterThan(0);
    expect(Object.fromEntries(countBy(statuses.values()))).toEqual({ succeed: SAGAS });
    expect(p.calls.filter((c) => c.method.endsWith('Revert')).map(keyOf)).toEqual([]);
    // Every action ran; a crash re-calls at most the call in flight (DESIGN invariant 3).
    const callsOf = (gid: string) => ACTIONS.map((m) => actionCalls.get(`${gid} ${m}`) ?? 0);
    expect(sagas.filter((s) => callsOf(s.gid).includes(0)).map((s) => s.gid)).toEqual([]);
    expect(repeated.filter(([, n]) => n > 2)).toEqual([]);
    expect(sagas.filter((s) => callsOf(s.gid).every((n) => n > 1)).map((s) => s.gid)).toEqual([]);
    const endedBefore = sagas.filter((s) => beforeRecovery.get(s.gid) === 'succeed');
    expect(endedBefore.filter((s) => callsOf(s.gid).some((n) => n > 1)).map((s) => s.gid)).toEqual([]);
    // The RM got the bytes and metadata through the crash as before it.
    expect(p.calls.every((c) => c.body.length === 2 && c.metadata['dtm-trans_type'] === 'saga')).toBe(true);
  }, 300_000);
});
