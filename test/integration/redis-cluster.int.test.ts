import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { masters, partitionOf, passQueueNames, type RedisClient, type RedisEventLog } from '@dtm-ts/adapters';
import type { RunningTm } from '@dtm-ts/tm';
import { startBranchPeer, type BranchPeer } from '../peers/http-branch-peer';
import { dtmClient, sagaBody, startTestTm, uniqueGid, waitAllFinal, type DtmClient } from '../support/tm-harness';
import { keysPerMaster, startRedisTarget, type RedisTarget } from '../support/redis-target';
import { waitFor } from '../support/wait';

// Always a cluster, whichever project runs this file: it is about the cluster itself.
let target: RedisTarget;
let tm: RunningTm;
let peer: BranchPeer;
let dtm: DtmClient;
let client: RedisClient;

beforeAll(async () => {
  target = await startRedisTarget('cluster');
  // 12 partitions over 3 masters, as the README recommends (≥ 4 × masters); one pass queue per partition.
  tm = await startTestTm(target.url, { partitions: 12 });
  peer = await startBranchPeer();
  dtm = dtmClient(tm.url);
  client = target.client();
});
afterAll(async () => {
  await tm?.close();
  await peer?.close();
  await target?.stop();
});

const twoStepSaga = (label: string) => {
  const gid = uniqueGid(label);
  const steps = [0, 1].map((i) => ({ action: peer.url(`${gid}/a${i}`), compensate: peer.url(`${gid}/c${i}`) }));
  return { gid, body: sagaBody(gid, steps) };
};

/** Submits `n` two-step sagas, `parallel` at a time; resolves to their gids once every submit answered 200. */
const submitSagas = async (label: string, n: number, parallel = 20): Promise<string[]> => {
  const sagas = Array.from({ length: n }, () => twoStepSaga(label));
  for (let i = 0; i < n; i += parallel) {
    const res = await Promise.all(sagas.slice(i, i + parallel).map((s) => dtm.post('/submit', s.body)));
    expect(res.map((r) => r.status)).toEqual(res.map(() => 200));
  }
  return sagas.map((s) => s.gid);
};

/** A two-step saga whose gid lies in each of the 12 partitions. */
const markersInEveryPartition = () => {
  const byPartition = new Map<number, ReturnType<typeof twoStepSaga>>();
  while (byPartition.size < 12) {
    const saga = twoStepSaga('marker');
    byPartition.set(partitionOf(saga.gid, 12), saga);
  }
  return [...byPartition.values()];
};

const histogram = (m: Map<string, string>): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const v of m.values()) out[v] = (out[v] ?? 0) + 1;
  return out;
};

describe('Redis Cluster of three masters', () => {
  it('when sagas run on it, then all succeed and their streams, feeds, read model and pass queues are on every master', async () => {
    const N = 300;
    const started = Date.now();
    const gids = await submitSagas('spread', N);
    const statuses = await waitAllFinal(dtm, gids, 60_000);
    const elapsedMs = Date.now() - started;
    expect(histogram(statuses)).toEqual({ succeed: N });

    const prefix = tm.infra.config.prefix;
    const all = await keysPerMaster(client, `*${prefix}*`);
    const streams = await keysPerMaster(client, `${prefix}:{p*}:tx:*`);
    const feeds = await keysPerMaster(client, `${prefix}:{p*}:feed`);
    const queues = await keysPerMaster(client, `bull:${prefix}-passes-{p*}:*`);
    console.log(
      `cluster: ${N} two-step sagas in ${elapsedMs} ms on 3 masters, 12 partitions; keys per master ` +
        `${all.join(' / ')} (streams ${streams.join(' / ')}, feeds ${feeds.join(' / ')}, queue keys ${queues.join(' / ')})`,
    );
    expect(streams.reduce((a, b) => a + b, 0)).toBe(N);
    for (const perMaster of [all, streams, feeds, queues]) {
      expect(perMaster).toHaveLength(3);
      expect(perMaster.every((n) => n > 0)).toBe(true);
    }
    // The pass queues' names carry their partition's hash tag.
    expect(passQueueNames({ prefix, partitions: 12, queues: 12, hashTagged: true })[3]).toBe(`${prefix}-passes-{p3}`);
  });

  it('when listing and scanning, then transactions of every master are found', async () => {
    const gids = await submitSagas('list', 24);
    expect(histogram(await waitAllFinal(dtm, gids, 30_000))).toEqual({ succeed: 24 });
    // The read model's /all merges every partition's index (on three masters); the catalog SCANs every master.
    const listed = new Set<string>();
    let position = '';
    do {
      const page = (await dtm.get(`/all?limit=100&position=${encodeURIComponent(position)}`)).body;
      for (const t of page.transactions as { gid: string }[]) listed.add(t.gid);
      position = (page.next_position as string | undefined) ?? '';
    } while (position);
    expect(gids.filter((g) => !listed.has(g))).toEqual([]);
    const scanned = new Set<string>();
    for await (const ids of (tm.infra.log as RedisEventLog).streamIds({ archived: false })) {
      for (const id of ids) scanned.add(id);
    }
    expect(gids.filter((g) => !scanned.has(g))).toEqual([]);
  });

  it('when a master is killed and restarted, then the TM reconnects and new sagas succeed', async () => {
    const before = await submitSagas('before-kill', 10);
    expect(histogram(await waitAllFinal(dtm, before, 30_000))).toEqual({ succeed: 10 });
    expect(await masters(client)).toHaveLength(3);
    await target.cluster!.kill(1);
    await target.cluster!.restart(1);
    // The restarted master has no AOF: it comes back empty but owns its slots again. Until the TM's clients
    // refresh their slot maps (every 5 s, or on a redirected command), auto-pipelined commands bound for it may
    // fail with MOVED (README, Redis Cluster): a submit then answers 500 with nothing written. Wait for that.
    await waitFor(
      async () => {
        // One saga in each of the 12 partitions, so that the restarted master's are among them.
        const res = await Promise.all(markersInEveryPartition().map((s) => dtm.post('/submit', s.body)));
        return res.every((r) => r.status === 200);
      },
      'the TM never accepted a submit after the master came back',
      { timeout: 30_000, interval: 200 },
    );
    const after = await submitSagas('after-restart', 30);
    expect(histogram(await waitAllFinal(dtm, after, 60_000))).toEqual({ succeed: 30 });
  });
});
