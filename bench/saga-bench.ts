/**
 * npm run bench: N two-step sagas against a local RM that answers 200 at once.
 * Prints sagas/s and p50/p99 (submit → last branch call), beside the raw rate of the same HTTP
 * client against the same RM without a TM, so the ratio is comparable across machines; then the
 * figures that carry across machines: CPU-µs per saga of each process (TM, Redis, this load
 * generator with its RM) and Redis commands per saga (INFO commandstats, scripts' inner calls
 * included).
 *
 * Closed loop by default: BENCH_CONCURRENCY clients (default 256), each with one saga in flight.
 * `npm run bench -- --rate 1000` runs open loop instead: sagas arrive at a fixed rate for
 * BENCH_SECONDS (default 10), and latency counts from the planned arrival, so queueing shows.
 * `npm run bench -- --cluster` puts the TM on a local Redis Cluster of 3 masters (REDIS_CLUSTER_NODES,
 * LOG_PARTITIONS default 12); Redis CPU and commands are then summed over the masters.
 *
 * The TM runs as its own process (as users run it); Redis too. Env: BENCH_SAGAS (default 20000),
 * BENCH_CONCURRENCY, BENCH_SECONDS, BENCH_PROFILE=1 writes a CPU profile of the TM to .bench/.
 * `--processes 2` (or TM_PROCESSES=2) starts the TM with TM_PROCESSES=2; its CPU is that of all its processes.
 */
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus } from 'node:os';
import { Agent, request } from 'undici';
import { freePort, startRedis, startRedisCluster } from '@dtm-ts/testing';
import { startTmProcess, twoStepSaga } from './tm-process';
import { redisCounters, sumCounters, treeCpuMicros, type RedisCounters } from './cpu';

const { values: args } = parseArgs({
  options: { rate: { type: 'string' }, processes: { type: 'string' }, cluster: { type: 'boolean' } },
});
/** Three masters instead of one Redis. */
const CLUSTER = args.cluster === true;
/** Open loop at this many sagas/s; closed loop when unset. */
const RATE = args.rate === undefined ? undefined : Number(args.rate);
if (RATE !== undefined && !(RATE > 0)) throw new Error(`--rate must be a positive number, got '${args.rate}'`);
/** TM_PROCESSES of the TM under test (`--processes 2`); else the environment's, else 1. */
const PROCESSES = Number(args.processes ?? process.env.TM_PROCESSES ?? 1);
if (!Number.isInteger(PROCESSES) || PROCESSES < 1)
  throw new Error(`--processes must be a positive integer, got '${args.processes}'`);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const N = RATE ? Math.round(RATE * SECONDS) : Number(process.env.BENCH_SAGAS ?? 20_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 256);
const PROFILE = process.env.BENCH_PROFILE === '1';

const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `total` tasks with at most `width` in flight. */
const pool = async (total: number, width: number, task: (i: number) => Promise<void>): Promise<void> => {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, total) }, async () => {
      while (next < total) await task(next++);
    }),
  );
};

/** CPU-µs per saga of each process and Redis commands per saga, over the measured window. */
const printPerSaga = (
  n: number,
  tmBefore: number,
  tmAfter: number,
  self: NodeJS.CpuUsage,
  redisBefore: RedisCounters,
  redisAfter: RedisCounters,
): void => {
  const per = (x: number): string => (x / n).toFixed(0).padStart(6);
  console.log('per saga (measured window):');
  console.log(`  TM        ${per(tmAfter - tmBefore)} CPU-µs   (TM_PROCESSES=${PROCESSES}: all its processes)`);
  console.log(`  Redis     ${per(redisAfter.cpuMicros - redisBefore.cpuMicros)} CPU-µs`);
  console.log(`  bench+RM  ${per(self.user + self.system)} CPU-µs   (this process: load generator and RM)`);
  const calls = new Map<string, number>();
  for (const [cmd, c] of redisAfter.calls) calls.set(cmd, c - (redisBefore.calls.get(cmd) ?? 0));
  const total = [...calls.values()].reduce((a, b) => a + b, 0);
  const top = [...calls.entries()]
    .filter(([, c]) => c > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([cmd, c]) => `${cmd} ${(c / n).toFixed(1)}`)
    .join(', ');
  console.log(`  Redis     ${(total / n).toFixed(1).padStart(6)} commands (${top})`);
};

const main = async (): Promise<void> => {
  // The RM: answers 200 at once and notes when each saga's last action arrived.
  const lastCall = new Map<string, number>();
  const waiting = new Map<string, () => void>();
  let rmCalls = 0;
  const rm = createServer((req: IncomingMessage, res: ServerResponse) => {
    rmCalls++;
    req.resume();
    req.on('end', () => {
      if (req.url?.startsWith('/TransIn')) {
        const gid = new URL(req.url, 'http://rm').searchParams.get('gid');
        if (gid) {
          lastCall.set(gid, performance.now());
          waiting.get(gid)?.();
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"dtm_result":"SUCCESS"}');
    });
  });
  rm.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => rm.listen(0, '127.0.0.1', r));
  const rmUrl = `http://127.0.0.1:${(rm.address() as AddressInfo).port}`;
  const client = new Agent({ connections: 128, keepAliveTimeout: 60_000 });

  // 1. Raw: the same client straight at the RM, two calls per "saga".
  const rawN = N;
  const t0 = performance.now();
  await pool(rawN, CONCURRENCY, async (i) => {
    for (const path of ['/TransOut', '/TransInRaw']) {
      const r = await request(`${rmUrl}${path}?gid=raw${i}&trans_type=saga&branch_id=01&op=action`, {
        method: 'POST',
        body: '{"amount":30}',
        headers: { 'content-type': 'application/json' },
        dispatcher: client,
      });
      await r.body.text();
    }
  });
  const rawSecs = (performance.now() - t0) / 1000;

  // 2. Through the TM (own process) with its own Redis.
  const redis = CLUSTER
    ? await startRedisCluster({ masters: 3, appendonly: true })
    : await startRedis({ appendonly: true, appendfsync: 'everysec' });
  const redisUrls = 'masters' in redis ? redis.masters.map((m) => m.url) : [redis.url];
  const redisEnv: Record<string, string> =
    'masters' in redis
      ? { REDIS_CLUSTER_NODES: redis.nodes.join(','), LOG_PARTITIONS: process.env.LOG_PARTITIONS ?? '12' }
      : { REDIS_URL: redis.url };
  const port = await freePort();
  mkdirSync('.bench', { recursive: true });
  const nodeArgs = PROFILE ? ['--cpu-prof', '--cpu-prof-dir=.bench'] : [];
  // Several TM processes: no per-process metrics servers (the bench reads /proc, not metrics).
  const tmEnv = {
    ...redisEnv,
    TM_PROCESSES: String(PROCESSES),
    ...(PROCESSES > 1 ? { METRICS_PORT: '0' } : {}),
  };
  const { tm, api } = await startTmProcess(port, tmEnv, client, nodeArgs);
  // Warm up (JIT, connections), then measure.
  const submit = async (gid: string): Promise<number> => {
    const body = twoStepSaga(gid, rmUrl);
    const start = performance.now();
    const r = await request(`${api}/submit`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
      dispatcher: client,
    });
    const text = await r.body.text();
    if (r.statusCode !== 200) throw new Error(`submit ${gid}: ${r.statusCode} ${text}`);
    return start;
  };
  const warm = Math.min(2000, Math.ceil(N / 10));
  const warmStarts = new Map<string, number>();
  await pool(warm, CONCURRENCY, async (i) => {
    const gid = `warm-${i}`;
    warmStarts.set(gid, await submit(gid));
  });
  while ([...warmStarts.keys()].some((g) => !lastCall.has(g))) await sleep(20);

  // The window the CPU and command figures cover: the measured sagas only.
  // One client per master: INFO is per server, so a cluster's figures are the sum over its masters.
  const redisClients = redisUrls.map((url) => new Redis(url, { lazyConnect: false }));
  const redisNow = async (): Promise<RedisCounters> => sumCounters(await Promise.all(redisClients.map(redisCounters)));
  const appendfsync = ((await redisClients[0]!.config('GET', 'appendfsync')) as string[])[1] ?? '?';
  const before = { tm: treeCpuMicros(tm.pid!), self: process.cpuUsage(), redis: await redisNow() };

  const starts = new Map<string, number>();
  const runId = Date.now().toString(36);
  const t1 = performance.now();
  const finished = (gid: string): Promise<void> => {
    if (lastCall.has(gid)) return Promise.resolve();
    const reached = new Promise<void>((resolve) => waiting.set(gid, resolve));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`saga ${gid} did not finish in 60 s`)), 60_000);
    });
    return Promise.race([reached, timeout]).finally(() => {
      clearTimeout(timer);
      waiting.delete(gid);
    });
  };
  if (RATE) {
    // Open loop: saga i is due at t1 + i/RATE, whatever happened to the ones before it; its latency
    // counts from that planned time, so a TM that falls behind shows it (no coordinated omission).
    const all: Promise<void>[] = [];
    for (let i = 0; i < N; i++) {
      const due = t1 + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      const gid = `b${runId}-${i}`;
      starts.set(gid, due);
      all.push(submit(gid).then(() => finished(gid)));
    }
    await Promise.all(all);
  } else {
    // Closed loop: each of CONCURRENCY clients submits a saga, waits until its last branch call
    // reached the RM, then submits the next; so latency is per saga, not queueing behind a flood.
    await pool(N, CONCURRENCY, async (i) => {
      const gid = `b${runId}-${i}`;
      const done = finished(gid);
      starts.set(gid, await submit(gid));
      await done;
    });
  }
  const lastEnd = Math.max(...[...starts.keys()].map((g) => lastCall.get(g)!));
  const sagaSecs = (lastEnd - t1) / 1000;
  const lat = [...starts.entries()].map(([g, s]) => lastCall.get(g)! - s).sort((a, b) => a - b);
  const after = {
    tm: treeCpuMicros(tm.pid!),
    self: process.cpuUsage(before.self),
    redis: await redisNow(),
  };
  for (const c of redisClients) c.disconnect();

  tm.kill('SIGINT');
  await new Promise((r) => tm.once('exit', r));
  await redis.stop();
  rm.close();
  await client.close();

  const sagaRate = N / sagaSecs;
  const tmShape = PROCESSES > 1 ? `${PROCESSES} all-in-one processes (TM_PROCESSES)` : 'one all-in-one process';
  const rawRate = rawN / rawSecs;
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, node ${process.version}`);
  console.log(
    RATE
      ? `sagas: ${N} two-step sagas, open loop at ${RATE}/s for ${SECONDS} s, TM = ${tmShape}`
      : `sagas: ${N} two-step sagas, ${CONCURRENCY} clients with one saga in flight each, TM = ${tmShape}`,
  );
  console.log(
    `redis: ${CLUSTER ? `cluster of ${redisUrls.length} masters, LOG_PARTITIONS ${redisEnv['LOG_PARTITIONS']}, ` : ''}appendonly yes, appendfsync ${appendfsync}`,
  );
  console.log(
    `  TM        ${sagaRate.toFixed(0).padStart(7)} sagas/s   p50 ${pct(lat, 50).toFixed(1)} ms   p99 ${pct(lat, 99).toFixed(1)} ms  (submit → last branch call)`,
  );
  console.log(`  raw       ${rawRate.toFixed(0).padStart(7)} pairs/s   (same client, 2 calls to the same RM, no TM)`);
  console.log(`  ratio     ${(sagaRate / rawRate).toFixed(3)} (TM sagas/s ÷ raw pairs/s)`);
  console.log(`  rm calls  ${rmCalls}`);
  printPerSaga(N, before.tm, after.tm, after.self, before.redis, after.redis);
  if (PROFILE) console.log('  CPU profile of the TM written to .bench/ (open in Chrome DevTools)');
};

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
