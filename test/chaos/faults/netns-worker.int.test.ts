import { randomUUID } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisProcess } from '@dtm-ts/testing';
import { startBranchPeer, type BranchPeer } from '../../peers/http-branch-peer';
import { spawnRole, stopAll, type RoleProcess } from '../../support/processes';
import { dtmClient, liveMarker, sagaBody, uniqueGid, waitAllFinal, type DtmClient } from '../../support/tm-harness';
import { createNetnsHost, type NetnsHost } from './netns';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/**
 * The wiring the chaos harness needs: a real worker role inside a network namespace, reaching the host's Redis and
 * RM at their loopback addresses through `forwardLoopback`, drives sagas; a cut of its link stalls it, and once the
 * link is back it carries on, on the same connections, with nothing lost or called twice.
 */
describe('a worker in its own network namespace', () => {
  let redis: RedisProcess;
  let peer: BranchPeer;
  let ns: NetnsHost;
  let api: RoleProcess;
  let worker: ChildProcess;
  let output = '';
  let dtm: DtmClient;

  beforeAll(async () => {
    redis = await startRedis();
    peer = await startBranchPeer();
    ns = await createNetnsHost('worker');
    const peerPort = Number(new URL(peer.url('x')).port);
    await ns.forwardLoopback([redis.port, peerPort]);
    const env = { REDIS_URL: redis.url, KEY_PREFIX: `nsw${randomUUID().slice(0, 8)}`, LOG_PARTITIONS: '4' };
    api = await spawnRole('api', env, { readyTimeoutMs: 90_000 });
    dtm = dtmClient(api.url);
    const workerEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) workerEnv[k] = v;
    Object.assign(workerEnv, env, {
      LOG_LEVEL: 'warn',
      METRICS_PORT: '0',
      RETRY_INTERVAL: '1',
      REQUEST_TIMEOUT: '3',
      JOB_LOCK_MS: '2000',
      SWEEP_INTERVAL_MS: '500',
      SWEEP_GRACE_MS: '2000',
    });
    worker = ns.spawn(process.execPath, ['--import', 'tsx', 'services/worker/src/main.ts'], {
      env: workerEnv,
      cwd: REPO_ROOT,
    });
    const keep = (c: Buffer): void => {
      output = (output + c.toString('utf8')).slice(-4_000);
    };
    worker.stdout!.on('data', keep);
    worker.stderr!.on('data', keep);
  }, 200_000);
  afterAll(async () => {
    worker?.kill('SIGKILL');
    await stopAll([api], 'SIGKILL');
    await ns?.destroy();
    await peer?.close();
    await redis?.stop();
  });

  const runSagas = async (label: string, n: number): Promise<string[]> => {
    const gids = Array.from({ length: n }, () => uniqueGid(label));
    for (const gid of gids) {
      const steps = [0, 1].map((i) => ({ action: peer.url(`${gid}/a${i}`), compensate: peer.url(`${gid}/c${i}`) }));
      const res = await dtm.post('/submit', sagaBody(gid, steps));
      expect(res.status, JSON.stringify(res.body)).toBe(200);
    }
    return gids;
  };
  const callsOf = (gid: string): number[] => ['a0', 'a1', 'c0', 'c1'].map((s) => peer.callsTo(`${gid}/${s}`).length);

  it('drives sagas, stalls while cut, and carries on once restored, each call made once', async () => {
    // Only the worker in the namespace runs passes (the API role queues them): these succeed through it.
    const before = await runSagas('ns-before', 5);
    const first = await waitAllFinal(dtm, before, 90_000);
    expect([...first.values()], output).toEqual(before.map(() => 'succeed'));

    await ns.cut();
    const during = await runSagas('ns-during', 5);
    // Cut off from Redis and the RM, it can drive nothing; a while is the only way to see "nothing".
    const stalled = await waitAllFinal(dtm, during, 3_000);
    expect([...stalled.values()]).not.toContain('succeed');
    expect(during.flatMap(callsOf).every((n) => n === 0)).toBe(true);

    await ns.restore();
    const after = await waitAllFinal(dtm, during, 90_000);
    expect([...after.values()], output).toEqual(during.map(() => 'succeed'));
    await liveMarker(dtm, peer);
    for (const gid of [...before, ...during]) expect(callsOf(gid), gid).toEqual([1, 1, 0, 0]);
    expect(worker.exitCode).toBeNull();
  });
});
