import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { freePort } from '@dtm-ts/testing';
import { BankDb, createDatabase, dropDatabase, type DbSpec } from '../../examples/bank-transfer/src/bank-db';
import { startBank, type BankService } from '../../examples/bank-transfer/src/bank-service';
import { Chaos, NO_CHAOS, seededRandom, type ChaosOptions } from '../../examples/bank-transfer/src/chaos';
import { startKafkaCredit, type KafkaCreditConsumer } from '../../examples/bank-transfer/src/kafka-credit';
import { setTimeout as pause } from 'node:timers/promises';
import { checkRun, type KillRecord, type RunFigures } from './checks';
import { bullConnection, passQueueName } from '../support/processes';
import { ChaosCluster, exitOf, type Slot } from './cluster';
import { skewedClock, type SkewedClock } from './faults/faketime';
import { startRestartableKafka, type RestartableKafka } from './faults/kafka';
import { createNetnsHost, type NetnsHost } from './faults/netns';
import { pauseFor } from './faults/pause';
import { startDurableRedis, type DurableRedis } from './faults/redis-aof';
import { startFaultProxy, type FaultProxy } from './faults/tcp-proxy';
import { startLoad, startTracker } from './load';
import { buildSchedule, countKinds, type ProxyTarget, type ScheduledFault } from './schedule';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface ChaosConfig {
  readonly seed: number;
  /** How long faults are injected (then the run waits for quiescence and checks). */
  readonly minutes: number;
  /** How long, after the faults stopped, every transfer has to reach its end. */
  readonly recoveryBoundS: number;
  readonly apis: number;
  /** Worker processes on the host (the first one with the skewed clock); plus one in its own network namespace. */
  readonly workers: number;
  /** AP loops sending transfers at once. */
  readonly concurrency: number;
  /** Mean gap between two faults. */
  readonly meanGapMs: number;
  /** Run a worker in a network namespace and partition it (needs root and `ip`). */
  readonly netns: boolean;
  readonly log: (line: string) => void;
}

/** The pass lease of the chaos TM (JOB_LOCK_MS): pauses and partitions outlast it. */
const LEASE_MS = 4_000;
const ACCOUNTS = 30;
const INITIAL = 10_000;
/** Faults the banks inject into every call while the schedule runs. Delays pass REQUEST_TIMEOUT (2 s) now and then. */
const RM_CHAOS: ChaosOptions = {
  refuse: 0.03,
  ongoing: 0.03,
  failBefore: 0.04,
  failAfter: 0.04,
  delay: 0.06,
  delayMs: [100, 3_500],
  crashAfterCommit: 0.04,
  crashBeforeCommit: 0.03,
};

/** The environment of every TM process: short timings, so that faults show and recovery fits a run. */
const tmEnv = (redisUrl: string, kafkaBrokers: string, keyPrefix: string): Record<string, string> => ({
  REDIS_URL: redisUrl,
  KEY_PREFIX: keyPrefix,
  LOG_PARTITIONS: '4',
  KAFKA_BROKERS: kafkaBrokers,
  // A restarted mock cluster has lost its topics: let the first record create it again.
  KAFKA_AUTO_CREATE_TOPICS: 'true',
  RETRY_INTERVAL: '1',
  REQUEST_TIMEOUT: '2',
  RETRY_BACKOFF_CAP: '4',
  JOB_LOCK_MS: String(LEASE_MS),
  SWEEP_INTERVAL_MS: '1000',
  SWEEP_GRACE_MS: '5000',
  WORKER_CONCURRENCY: '50',
});

/** Everything a run started, so that `cleanUp` can end it whatever failed. */
interface Rig {
  redis?: DurableRedis;
  kafka?: RestartableKafka;
  netns?: NetnsHost;
  clock?: SkewedClock;
  proxies: Partial<Record<ProxyTarget, FaultProxy>>;
  banks: BankService[];
  books: BankDb[];
  specs: DbSpec[];
  cluster?: ChaosCluster;
  partitioned?: ChildProcess;
  consumer?: KafkaCreditConsumer;
  /** Every gid of the run starts with it. */
  gidPrefix: string;
}

/**
 * One chaos run: the bank-transfer example's APs send saga, TCC, XA and msg (HTTP and Kafka) transfers between the
 * PostgreSQL bank and the MariaDB bank, through a TM of several API and worker processes, while the seeded
 * schedule injects faults; then the faults stop, the run waits for every transfer to end and checks the books.
 */
export const runChaos = async (cfg: ChaosConfig): Promise<RunFigures> => {
  const rig: Rig = { proxies: {}, banks: [], books: [], specs: [], gidPrefix: 'chaos-unset' };
  try {
    return await run(cfg, rig);
  } finally {
    await cleanUp(rig);
  }
};

const run = async (cfg: ChaosConfig, rig: Rig): Promise<RunFigures> => {
  const { log } = cfg;
  const rnd = seededRandom(cfg.seed);
  const durationMs = Math.round(cfg.minutes * 60_000);
  const clockOffsetS = rnd() < 0.5 ? -30 : 30;
  const schedule = buildSchedule(cfg.seed, { durationMs, meanGapMs: cfg.meanGapMs, leaseMs: LEASE_MS, clockOffsetS });
  log(`chaos: seed ${cfg.seed}, ${cfg.minutes} min of faults, load average ${loadavg().map((l) => l.toFixed(1))}`);
  log(`chaos: schedule ${JSON.stringify(countKinds(schedule))}`);

  // The network: with a namespace, every server the TM reaches listens on the host's end of its veth pair, which
  // the host's own processes reach as well.
  const id = `${cfg.seed.toString(36).slice(-4)}${randomBytes(2).toString('hex')}`;
  rig.gidPrefix = `chaos${id}`;
  if (cfg.netns) rig.netns = await createNetnsHost(`chaos${id}`.slice(0, 12));
  const host = rig.netns?.hostIp ?? '127.0.0.1';
  const proxy = async (target: ProxyTarget, to: { host: string; port: number }): Promise<FaultProxy> => {
    const p = await startFaultProxy(to, { listenHost: host, random: seededRandom(cfg.seed + target.length) });
    rig.proxies[target] = p;
    return p;
  };

  rig.redis = await startDurableRedis();
  rig.kafka = await startRestartableKafka();
  const redisProxy = await proxy('redis', { host: '127.0.0.1', port: rig.redis.port });
  // Kafka's faults go through the proxies the mock puts in front of every broker (it advertises their ports): a
  // proxy before the bootstrap address alone would only see the first connection of each client.
  const kafka = rig.kafka;
  rig.proxies.kafka = {
    host: '127.0.0.1',
    port: Number(kafka.brokerList[0]!.split(':')[1]),
    set: (mode) => kafka.set(mode),
    resetAll: () => kafka.resetAll(),
    close: async () => undefined,
  };

  // The banks, each behind its proxy: the urls in every transaction are the proxies'.
  const suffix = id.replace(/[^a-z0-9]/g, '');
  rig.specs = [
    { kind: 'postgres', host: '127.0.0.1', port: 5432, user: 'postgres', database: `dtm_chaos_alpha_${suffix}` },
    { kind: 'mysql', host: '127.0.0.1', port: 3306, user: 'root', database: `dtm_chaos_beta_${suffix}` },
  ];
  for (const [i, spec] of rig.specs.entries()) {
    await createDatabase(spec);
    const books = BankDb.open(i === 0 ? 'alpha' : 'beta', spec);
    rig.books.push(books);
    await books.createSchema(ACCOUNTS, INITIAL);
  }
  for (const [i, name] of (['alpha', 'beta'] as const).entries()) {
    const port = await freePort();
    const p = await proxy(name, { host: '127.0.0.1', port });
    rig.banks.push(
      await startBank({
        name,
        db: rig.books[i]!,
        port,
        chaos: new Chaos(RM_CHAOS, seededRandom(cfg.seed + 1 + i)),
        advertisedUrl: `http://${host}:${p.port}`,
      }),
    );
  }
  const [alpha, beta] = rig.banks as [BankService, BankService];

  const kafkaTopic = `chaos-credits-${id}`;
  rig.consumer = await startKafkaCredit({
    brokers: rig.kafka.brokerList,
    topic: kafkaTopic,
    groupId: `chaos-bank-${id}`,
    bankAt: (url) => (url === alpha.url ? alpha.db : beta.db),
  });

  // The TM: APIs and workers on the host, the first worker with a skewed clock, one more worker partitionable.
  const env = tmEnv(`redis://${host}:${redisProxy.port}`, kafka.brokers, `chaos${id}`);
  rig.clock = await skewedClock(clockOffsetS);
  const cluster = new ChaosCluster(env);
  rig.cluster = cluster;
  await cluster.start(cfg.apis, [rig.clock.env, ...Array.from({ length: cfg.workers - 1 }, () => ({}))]);
  if (rig.netns) {
    const workersBefore = await passWorkers(env);
    // The brokers advertise 127.0.0.1 addresses: forwarded into the namespace, through its link (cut with it).
    await rig.netns.forwardLoopback(rig.kafka.brokerList.map((b) => Number(b.split(':')[1])));
    rig.partitioned = startPartitionedWorker(rig.netns, { ...env, KAFKA_BROKERS: rig.kafka.brokers });
    // It must be driving passes before the run counts on partitioning it.
    const deadline = Date.now() + 90_000;
    while ((await passWorkers(env)) <= workersBefore) {
      if (Date.now() > deadline || rig.partitioned.exitCode !== null)
        throw new Error('the worker in the network namespace did not register on the pass queue');
      await pause(200);
    }
  }
  log(
    `chaos: ${cfg.apis} APIs, ${cfg.workers} workers (worker0's clock ${clockOffsetS} s)${rig.netns ? ', 1 in a network namespace' : ''}`,
  );

  const load = startLoad({
    seed: cfg.seed,
    concurrency: cfg.concurrency,
    accounts: ACCOUNTS,
    kafkaTopic,
    gidPrefix: `chaos${id}`,
    apis: () => cluster.liveApis(),
    banks: [alpha, beta],
  });
  const tracker = startTracker(load.records, () => cluster.liveApis());

  // The schedule: each fault fires at its offset and runs in the background, so faults overlap.
  const kills: KillRecord[] = [];
  const counts: Record<string, number> = {};
  const running = new Set<{ p: Promise<void>; label: string }>();
  const busy = new Set<string>();
  const started = Date.now();
  const openNow = (): string[] => [...load.records.values()].filter((r) => r.status === undefined).map((r) => r.t.gid);
  for (const fault of schedule) {
    const wait = started + fault.atMs - Date.now();
    if (wait > 0) await pause(wait);
    // One fault at a time per resource (Redis, Kafka, a proxy, the namespace): a second one overlapping it is skipped.
    const resource = resourceOf(fault);
    if (resource && busy.has(resource)) {
      counts[`skipped ${fault.kind}`] = (counts[`skipped ${fault.kind}`] ?? 0) + 1;
      continue;
    }
    if (resource) busy.add(resource);
    const task = fire(fault, { cluster, rig, kills, counts, openNow })
      .finally(() => resource && busy.delete(resource))
      .catch((err: Error) => {
        counts[`error ${fault.kind}`] = (counts[`error ${fault.kind}`] ?? 0) + 1;
        log(`chaos: ${fault.kind} failed: ${err.message}`);
      });
    const entry = { p: task, label: `${fault.kind}@${fault.atMs}` };
    running.add(entry);
    void task.finally(() => running.delete(entry));
  }
  const rest = started + durationMs - Date.now();
  if (rest > 0) await pause(rest);

  // Faults stop: the APs finish their calls, every fault in progress ends, everything comes back.
  log(`chaos: faults stop after ${Math.round((Date.now() - started) / 1000)} s; ${load.records.size} transfers sent`);
  for (const b of rig.banks) b.chaos.set(NO_CHAOS);
  const waiting = (label: string, what: Promise<unknown>, pending: () => string) =>
    waitSaying(what, (s) => log(`chaos: after ${s} s still waiting for ${label}: ${pending()}`));
  await waiting('the APs', load.stop(), () =>
    [...load.records.values()]
      .filter((r) => r.apSaid === undefined)
      .map((r) => r.t.gid)
      .join(', '),
  );
  await waiting('faults in progress', Promise.all([...running].map((t) => t.p)), () =>
    [...running].map((t) => t.label).join(', '),
  );
  for (const p of Object.values(rig.proxies)) p.set({});
  await rig.netns?.restore();
  await waiting('processes starting again', cluster.settle(), () =>
    [...cluster.apis, ...cluster.workers]
      .filter((s) => s.down)
      .map((s) => s.label)
      .join(', '),
  );
  const quietAt = Date.now();

  // Quiescence: every transfer ends within the bound.
  const deadline = quietAt + cfg.recoveryBoundS * 1_000;
  for (;;) {
    const open = await tracker.pollOnce();
    if (open === 0 || Date.now() > deadline) break;
    await pause(1_000);
  }
  await tracker.stop();
  log(`chaos: quiet after ${Math.round((Date.now() - quietAt) / 1000)} s; checking`);

  return checkRun({
    seed: cfg.seed,
    minutes: cfg.minutes,
    records: load.records,
    apis: () => cluster.liveApis(),
    banks: [alpha, beta],
    gidPrefix: `chaos${id}`,
    consumer: rig.consumer,
    expectedTotal: 2 * ACCOUNTS * INITIAL,
    initial: INITIAL,
    kills,
    faults: counts,
    startFailures: cluster.startFailures,
    partitionedExit: rig.partitioned && rig.partitioned.exitCode !== null ? rig.partitioned.exitCode : undefined,
    recoveryBoundS: cfg.recoveryBoundS,
    loadAverage: loadavg(),
    log,
  });
};

/** Awaits `what`, calling `say` with the seconds waited every 30 s until it settles: a stuck phase names itself. */
const waitSaying = async (what: Promise<unknown>, say: (seconds: number) => void): Promise<void> => {
  const started = Date.now();
  let done = false;
  void what.finally(() => (done = true)).catch(() => undefined);
  while (!done) {
    await Promise.race([what.catch(() => undefined), pause(30_000)]);
    if (!done) say(Math.round((Date.now() - started) / 1000));
  }
  await what;
};

/** What a fault holds while it lasts; process faults pick among the processes up, so they need none. */
const resourceOf = (f: ScheduledFault): string | undefined => {
  switch (f.kind) {
    case 'kill-redis':
      return 'redis';
    case 'restart-kafka':
      return 'kafka';
    case 'proxy':
      return `proxy-${f.target}`;
    case 'partition':
      return 'netns';
    default:
      return undefined;
  }
};

interface FireContext {
  readonly cluster: ChaosCluster;
  readonly rig: Rig;
  readonly kills: KillRecord[];
  readonly counts: Record<string, number>;
  readonly openNow: () => string[];
}

/**
 * The `pick`-th (modulo) process of a role that is up; when none is (all restarting, on a loaded machine), waits up
 * to a minute for one, so that a scheduled fault is not lost.
 */
const pickUp = async (cluster: ChaosCluster, role: 'api' | 'worker', pick: number): Promise<Slot | undefined> => {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const slots = cluster.up(role);
    if (slots.length > 0) return slots[pick % slots.length];
    if (Date.now() > deadline) return undefined;
    await pause(200);
  }
};

/** Injects one fault; resolves when it is over (the process restarted, the proxy back to normal, …). */
const fire = async (f: ScheduledFault, ctx: FireContext): Promise<void> => {
  const { cluster, rig, counts } = ctx;
  const count = (k: string) => (counts[k] = (counts[k] ?? 0) + 1);
  switch (f.kind) {
    case 'kill-api':
    case 'kill-worker': {
      const slot = await pickUp(cluster, f.kind === 'kill-api' ? 'api' : 'worker', f.pick);
      if (!slot) return;
      ctx.kills.push({ what: slot.label, at: Date.now(), open: ctx.openNow() });
      count(f.kind);
      cluster.kill(slot, f.downMs);
      return;
    }
    case 'pause-worker': {
      const slot = await pickUp(cluster, 'worker', f.pick);
      if (!slot?.proc) return;
      count(f.kind);
      await pauseFor(slot.proc.pid, f.ms);
      return;
    }
    case 'kill-redis': {
      const redis = rig.redis!;
      ctx.kills.push({ what: 'redis', at: Date.now(), open: ctx.openNow() });
      count(f.kind);
      await redis.kill();
      await pause(f.downMs);
      // It must come back, or nothing else can be checked: a start that failed (a loaded machine) is tried again.
      for (let attempt = 1; ; attempt++) {
        try {
          await redis.restart();
          return;
        } catch (err) {
          if (attempt >= 10) throw err;
          count('redis-restart-retried');
          await pause(1_000);
        }
      }
    }
    case 'restart-kafka':
      // A broker restart as clients see it: connections reset, refused while down, the log kept (as on disk). The
      // mock's own crash-restart loses every record it holds, which would count the broker's loss as the TM's.
      count(f.kind);
      await rig.kafka!.cut();
      await pause(f.downMs);
      await rig.kafka!.restore();
      return;
    case 'proxy': {
      const p = rig.proxies[f.target]!;
      count(`proxy-${f.target}`);
      p.set(f.mode);
      if (f.mode.reset) p.resetAll();
      await pause(f.forMs);
      p.set({});
      return;
    }
    case 'clock-jump':
      count(f.kind);
      await rig.clock!.set(f.offsetS);
      return;
    case 'partition':
      if (!rig.netns) return;
      count(f.kind);
      await rig.netns.cut();
      await pause(f.forMs);
      await rig.netns.restore();
      return;
  }
};

/** A worker in the network namespace, reaching Redis and the banks over the veth pair (through the proxies). */
const startPartitionedWorker = (netns: NetnsHost, env: Record<string, string>): ChildProcess => {
  const full: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) full[k] = v;
  Object.assign(full, env, { HOST: '127.0.0.1', LOG_LEVEL: 'warn', METRICS_PORT: '0', GRPC_PORT: '0', PORT: '0' });
  const child = netns.spawn(process.execPath, ['--import', 'tsx', 'services/worker/src/main.ts'], {
    env: full,
    cwd: REPO_ROOT,
  });
  // Its output is not needed; a full pipe would stall it.
  child.stdout?.resume();
  child.stderr?.resume();
  return child;
};

/** How many BullMQ workers are registered on the pass queue. */
const passWorkers = async (env: Record<string, string>): Promise<number> => {
  const queue = new Queue(passQueueName(env['KEY_PREFIX']!), { connection: bullConnection(env['REDIS_URL']!) });
  queue.on('error', () => undefined);
  try {
    return (await queue.getWorkers()).length;
  } finally {
    await queue.close();
  }
};

const cleanUp = async (rig: Rig): Promise<void> => {
  const quietly = async (what: () => Promise<unknown> | undefined): Promise<void> => {
    await Promise.resolve()
      .then(what)
      .catch(() => undefined);
  };
  await quietly(() => rig.cluster?.stop());
  if (rig.partitioned) {
    rig.partitioned.kill('SIGKILL');
    await exitOf(rig.partitioned);
  }
  await quietly(() => rig.consumer?.stop());
  for (const b of rig.banks) await quietly(() => b.close());
  for (const p of Object.values(rig.proxies)) await quietly(() => p.close());
  await quietly(() => rig.kafka?.stop());
  await quietly(() => rig.redis?.stop());
  await quietly(() => rig.clock?.cleanup());
  await quietly(() => rig.netns?.destroy());
  for (const books of rig.books) {
    // A prepared XA transaction left behind would keep its database from being dropped, and would outlive the run
    // in the server (a bank's XA PREPARE may still land while its pool closes; MariaDB lets another session roll a
    // prepared xid back only once its own session is gone): ask again until none of this run's is left.
    for (let attempt = 0; attempt < 20; attempt++) {
      const left = await books.preparedXids(rig.gidPrefix).catch(() => [] as string[]);
      if (left.length === 0) break;
      for (const xid of left) await quietly(() => books.rollbackPrepared(xid));
      await pause(500);
    }
    await quietly(() => books.close());
  }
  for (const spec of rig.specs) await quietly(() => dropDatabase(spec));
};
