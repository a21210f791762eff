import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partitionOf, passJobId, passQueueNames, RedisKeys, scanKeys } from '@dtm-ts/adapters';
import { startRedisCluster, type RedisClusterProcess, type RedisProcess } from '@dtm-ts/testing';
import type { RunningTm } from '@dtm-ts/tm';
import { startBranchPeer, type BranchPeer } from '../peers/http-branch-peer';
import { dtmClient, sagaBody, startTestTm, uniqueGid, waitAllFinal, type DtmClient } from '../support/tm-harness';
import { pause } from '../support/wait';

// A cluster of its own, whichever project runs this file: three masters with one replica each, so that a master
// SIGKILLed is replaced by its replica (startRedisTarget makes no replicas).
let cluster: RedisClusterProcess;
let tm: RunningTm;
let peer: BranchPeer;
let dtm: DtmClient;

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3, replicas: 1 });
  tm = await startTestTm(cluster.url, { partitions: 12 });
  peer = await startBranchPeer();
  dtm = dtmClient(tm.url);
});
afterAll(async () => {
  await tm?.close();
  await peer?.close();
  await cluster?.stop();
});

const twoStepSaga = (label: string) => {
  const gid = uniqueGid(label);
  const steps = [0, 1].map((i) => ({ action: peer.url(`${gid}/a${i}`), compensate: peer.url(`${gid}/c${i}`) }));
  return { gid, body: sagaBody(gid, steps) };
};
type Saga = ReturnType<typeof twoStepSaga>;

/** A two-step saga whose gid lies in each of the 12 partitions, so that the failed-over master's are among them. */
const markersInEveryPartition = (label: string): Saga[] => {
  const byPartition = new Map<number, Saga>();
  while (byPartition.size < 12) {
    const saga = twoStepSaga(label);
    byPartition.set(partitionOf(saga.gid, 12), saga);
  }
  return [...byPartition.values()];
};

/** Submits `n` two-step sagas, 20 at a time; resolves to their gids once every submit answered 200. */
const submitSagas = async (label: string, n: number): Promise<string[]> => {
  const sagas = Array.from({ length: n }, () => twoStepSaga(label));
  for (let i = 0; i < n; i += 20) {
    const res = await Promise.all(sagas.slice(i, i + 20).map((s) => dtm.post('/submit', s.body)));
    expect(res.map((r) => r.status)).toEqual(res.map(() => 200));
  }
  return sagas.map((s) => s.gid);
};

/**
 * Submits every saga again until each answered 200 (a submit of the same gid is idempotent), as a client does
 * after a 5xx; resolves to how many answers were not 200. Fails the test after `timeoutMs`.
 */
const submitUntilAccepted = async (sagas: readonly Saga[], timeoutMs: number): Promise<number> => {
  const deadline = Date.now() + timeoutMs;
  let open = [...sagas];
  let refused = 0;
  while (open.length) {
    const res = await Promise.all(open.map((s) => dtm.post('/submit', s.body).catch(() => ({ status: 0 }))));
    open = open.filter((_, i) => res[i]!.status !== 200);
    refused += open.length;
    if (open.length && Date.now() > deadline) {
      throw new Error(`${open.length} submits still refused after ${timeoutMs} ms: ${open.map((s) => s.gid)}`);
    }
    if (open.length) await pause(100);
  }
  return refused;
};

/** Blocks until every master's writes so far reached at least one replica (`WAIT 1`), through a plain client. */
const waitReplicated = async (masters: readonly RedisProcess[]): Promise<void> => {
  for (const m of masters) {
    const direct = new Redis({ port: m.port, lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await direct.connect();
      expect(await direct.call('WAIT', '1', '5000')).toBeGreaterThanOrEqual(1);
    } finally {
      direct.disconnect();
    }
  }
};

/**
 * What the TM's Redis holds for a saga that did not end, to tell a stuck one's cause from a slow one: its stream
 * length against its read-model row's version, its wake time, its lease, and its pass jobs with their state.
 */
const diagnose = async (gid: string): Promise<string> => {
  const { redis, config } = tm.infra;
  const keys = new RedisKeys({ prefix: config.prefix, partitions: 12 });
  const p = keys.partitionOf(gid);
  const queue = passQueueNames({ prefix: config.prefix, partitions: 12, queues: 12, hashTagged: true })[p]!;
  const jobPrefix = `bull:${queue}:${passJobId(gid, '')}`;
  const jobs: string[] = [];
  for await (const found of scanKeys(redis, `${jobPrefix}*`)) {
    for (const k of found) {
      const id = k.slice(`bull:${queue}:`.length);
      if (id.includes(':')) continue; // a job's lock or logs
      const [delayed, wait, active, lock] = await Promise.all([
        redis.zscore(`bull:${queue}:delayed`, id),
        redis.lpos(`bull:${queue}:wait`, id),
        redis.lpos(`bull:${queue}:active`, id),
        redis.pttl(`${k}:lock`),
      ]);
      const state = delayed !== null ? `delayed` : wait !== null ? 'wait' : active !== null ? 'active' : 'other';
      jobs.push(`${id}=${state}${lock > 0 ? ` lock ${lock} ms` : ''} attempts ${await redis.hget(k, 'atm')}`);
    }
  }
  const [length, row, wake, lease, leaseTtl] = await Promise.all([
    redis.llen(keys.streamKey(gid)),
    redis.hget(keys.readModelKey(gid), 'v'),
    redis.zscore(keys.wakeKey(p), gid),
    redis.get(keys.leaseKey(gid)),
    redis.pttl(keys.leaseKey(gid)),
  ]);
  const wakeIn = wake === null ? 'none' : `${Number(wake) - Date.now()} ms`;
  return (
    `${gid} (partition ${p}): ${length} events, row v${row}, wake in ${wakeIn}, lease ${lease ? `held ${leaseTtl} ms` : 'free'}, ` +
    `jobs [${jobs.join(', ')}]`
  );
};

/** Waits up to 30 s for `gids` to end; their end states, counted. Prints what the TM holds for any that did not. */
const endStates = async (gids: readonly string[]): Promise<Record<string, number>> => {
  const states = await waitAllFinal(dtm, gids, 30_000);
  const open = gids.filter((g) => !['succeed', 'failed'].includes(states.get(g)!));
  if (open.length) console.log(`not ended:\n${(await Promise.all(open.map(diagnose))).join('\n')}`);
  return histogram(states.values());
};

/** What `/query` says of `gid`: its status, `lost` when the TM answers that it knows no such gid. */
const statusOf = async (gid: string): Promise<string> => {
  try {
    const res = await dtm.get(`/query?gid=${encodeURIComponent(gid)}`);
    if (res.status !== 200) return `http-${res.status}`;
    const tx = res.body.transaction as { status?: string } | null | undefined;
    return tx?.status ?? 'lost';
  } catch {
    return 'unreachable';
  }
};

const histogram = (values: Iterable<string>): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return out;
};

describe('Redis Cluster failover (three masters, one replica each)', () => {
  it('when a master is SIGKILLed after its writes reached the replica, then finished sagas are still there and new ones succeed once the replica took over', async () => {
    const before = await submitSagas('before-failover', 60);
    expect(histogram((await waitAllFinal(dtm, before, 30_000)).values())).toEqual({ succeed: 60 });
    await waitReplicated(cluster.masters);

    const killedAt = Date.now();
    await cluster.kill(1);
    const promoted = await cluster.waitFailover(1, 30_000);
    const promotedAt = Date.now();
    expect(cluster.replicaOf(1)).toContain(promoted);

    // ioredis learns the new master at its next slot refresh (every 2 s, README, Redis Cluster): until then a
    // submit bound for its partitions may answer 500 with nothing written. One saga in every partition.
    const markers = markersInEveryPartition('after-failover');
    const refused = await submitUntilAccepted(markers, 20_000);
    const acceptedAt = Date.now();
    console.log(
      `failover: replica promoted ${promotedAt - killedAt} ms after the SIGKILL; submits in every partition ` +
        `all accepted ${acceptedAt - killedAt} ms after the SIGKILL (${refused} answers not 200 meanwhile)`,
    );
    expect(await endStates(markers.map((s) => s.gid))).toEqual({ succeed: 12 });
    // Replicated before the kill: every saga finished before it still answers succeed, from the new master.
    expect(histogram(await Promise.all(before.map(statusOf)))).toEqual({ succeed: 60 });
    const after = await submitSagas('after-failover', 30);
    expect(await endStates(after)).toEqual({ succeed: 30 });
    // A branch that answers 500 once is retried by a pass job after the backoff: every partition's BullMQ queue,
    // the promoted master's among them, still has a live worker.
    const retried = markersInEveryPartition('retry-after-failover');
    for (const s of retried) peer.script(`${s.gid}/a0`, [500, 200]);
    await submitUntilAccepted(retried, 10_000);
    expect(await endStates(retried.map((s) => s.gid))).toEqual({ succeed: 12 });
    expect(retried.map((s) => peer.callsTo(`${s.gid}/a0`).length)).toEqual(retried.map(() => 2));
  });

  it('when a master is SIGKILLed while sagas are in flight, then every acknowledged saga ends or is lost to asynchronous replication, none is stuck', async () => {
    // The RM answers each action after 300 ms, so that passes are in flight when the master dies; submits arrive
    // 4 every 150 ms for 6 s, without waiting for earlier answers, before, during and after the failover.
    const sagas = Array.from({ length: 160 }, () => twoStepSaga('in-flight'));
    for (const s of sagas) for (const i of [0, 1]) peer.script(`${s.gid}/a${i}`, [{ status: 200, delayMs: 300 }]);

    const acknowledged: Saga[] = [];
    const refusedFirst: Saga[] = [];
    let killedAt = Infinity;
    const ackedAt = new Map<string, number>();
    let slowestMs = 0;
    const refusals: string[] = [];
    const answers: Promise<void>[] = [];
    const submitting = (async () => {
      for (let i = 0; i < sagas.length; i += 4) {
        for (const s of sagas.slice(i, i + 4)) {
          const sentAt = Date.now();
          answers.push(
            dtm
              .post('/submit', s.body)
              .catch(() => ({ status: 0 }))
              .then((res) => {
                slowestMs = Math.max(slowestMs, Date.now() - sentAt);
                if (res.status === 200) ackedAt.set(s.gid, Date.now());
                else refusals.push(String(res.status || 'no answer'));
                (res.status === 200 ? acknowledged : refusedFirst).push(s);
              }),
          );
        }
        await pause(150);
      }
      await Promise.all(answers);
    })();
    // Master 0 still has its replica (the first case failed over master 1).
    await pause(1_000);
    killedAt = Date.now();
    await cluster.kill(0);
    const promoted = await cluster.waitFailover(0, 30_000);
    const promotedAt = Date.now();
    expect(cluster.replicaOf(0)).toContain(promoted);
    await submitting;

    // A submit that did not answer 200 is the client's to retry (idempotent for the same gid).
    const refusedAgain = await submitUntilAccepted(refusedFirst, 20_000);
    const all = [...acknowledged, ...refusedFirst];
    await waitAllFinal(
      dtm,
      all.map((s) => s.gid),
      30_000,
    );
    const finalOf = new Map(await Promise.all(all.map(async (s) => [s.gid, await statusOf(s.gid)] as const)));
    const ackedBeforeKill = [...ackedAt.values()].filter((t) => t < killedAt).length;
    const ackedDuring = [...ackedAt.values()].filter((t) => t >= killedAt && t < promotedAt).length;
    const acked = histogram(acknowledged.map((s) => finalOf.get(s.gid)!));
    const retried = histogram(refusedFirst.map((s) => finalOf.get(s.gid)!));
    console.log(
      `failover in flight: replica promoted ${promotedAt - killedAt} ms after the SIGKILL; ` +
        `${acknowledged.length} submits acknowledged at once (${ackedBeforeKill} before the kill, ` +
        `${ackedDuring} between kill and promotion): ` +
        `${JSON.stringify(acked)}; ${refusedFirst.length} refused ${JSON.stringify(histogram(refusals))} and retried (${refusedAgain} more refusals): ` +
        `${JSON.stringify(retried)}; slowest submit answer ${slowestMs} ms`,
    );
    // Redis replicates asynchronously: a write the old master acknowledged but had not yet sent to its replica is
    // gone after the failover, so an acknowledged submit may be unknown afterwards ('lost'). That is Redis's
    // durability bound (README, Redis Cluster), not the TM's; what the TM must not do is leave one stuck.
    const unended = all.filter((s) => !['succeed', 'lost'].includes(finalOf.get(s.gid)!));
    if (unended.length)
      console.log(`not ended:\n${(await Promise.all(unended.map((s) => diagnose(s.gid)))).join('\n')}`);
    expect(Object.keys(acked).filter((s) => s !== 'succeed' && s !== 'lost')).toEqual([]);
    // A retry answered 200 after the failover: on the new master, nothing may be lost.
    expect(retried).toEqual(refusedFirst.length ? { succeed: refusedFirst.length } : {});
  });
});
