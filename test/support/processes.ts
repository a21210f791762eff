import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { Cluster } from 'ioredis';
import { passQueueNames } from '@dtm-ts/adapters';
import { parseRedisClusterNodes } from '@dtm-ts/config';
import { freePort } from '@dtm-ts/testing';

/** A role of the TM as its own process: `services/<role>/src/main.ts`. */
export type Role = 'api' | 'worker' | 'tm';

/** A role running as a child process, started by {@link spawnRole}. */
export interface RoleProcess {
  readonly role: Role;
  readonly pid: number;
  /** The environment it was started with (what the caller gave, plus the defaults). */
  readonly env: Readonly<Record<string, string>>;
  /** `http://127.0.0.1:<port>` of the API ('api' and 'tm'); '' for a worker. */
  readonly url: string;
  /** Resolves when the process has exited, with its exit code or the signal that ended it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** True until the process has exited. */
  readonly running: boolean;
  /** Sends `signal` (default SIGTERM) and resolves once the process has exited; at once if it already had. */
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The last lines it wrote on stdout and stderr, for error messages. */
  output(): string;
}

export interface SpawnOptions {
  /** How long to wait for the process to be ready. Default 30 s (tsx compiles on first start). */
  readonly readyTimeoutMs?: number;
}

// Not wait.ts's pause: that module imports vitest, and the chaos run (npm run chaos) uses this one outside vitest.
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const OUTPUT_LINES = 60;
const START_ATTEMPTS = 3;

/** Short timings, so that recovery shows within a test's time. Anything given to spawnRole wins. */
const DEFAULT_ENV: Readonly<Record<string, string>> = {
  HOST: '127.0.0.1',
  LOG_LEVEL: 'warn',
  // Several workers share this machine: no fixed metrics port.
  METRICS_PORT: '0',
  GRPC_PORT: '0',
  RETRY_INTERVAL: '1',
  REQUEST_TIMEOUT: '3',
  RETRY_BACKOFF_CAP: '8',
  JOB_LOCK_MS: '2000',
  SWEEP_INTERVAL_MS: '500',
  SWEEP_GRACE_MS: '2000',
};

const children = new Set<ChildProcess>();
let exitHookInstalled = false;

const killAll = (): void => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
};

/**
 * No role may outlive the test process. Vitest ends its fork workers with SIGTERM, which skips 'exit' handlers:
 * kill the children on the usual signals too, then let the signal do what it would have done (as
 * shared/testing's redis-server does).
 */
const installExitHook = (): void => {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', killAll);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAll();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
};

/** The BullMQ queue the roles drive passes from on one Redis, as the runtime names it. */
export const passQueueName = (keyPrefix: string): string => `${keyPrefix}-passes`;

/** BullMQ connection options from a `redis://host:port[/db]` URL (tests only use plain local URLs). */
export const bullConnection = (redisUrl: string): { host: string; port: number; db: number } => {
  const u = new URL(redisUrl);
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
  };
};

/** Ids (from CLIENT LIST) of the Redis connections BullMQ workers of the queue registered under the queue's name. */
const workerClientIds = async (queue: Queue): Promise<Set<string>> =>
  new Set((await queue.getWorkers()).map((w) => String(w['id'])));

interface Launched {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly output: () => string;
}

const launch = (role: Role, env: Record<string, string>): Launched => {
  const child = spawn(process.execPath, ['--import', 'tsx', `services/${role}/src/main.ts`], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const lines: string[] = [];
  let partial = '';
  const keep = (chunk: Buffer): void => {
    // Read everything (a full pipe would stall the child), keep the tail.
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
    if (lines.length > OUTPUT_LINES) lines.splice(0, lines.length - OUTPUT_LINES);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      done({ code, signal });
    });
    child.once('error', (err) => {
      children.delete(child);
      lines.push(`spawn failed: ${err.message}`);
      done({ code: null, signal: null });
    });
  });
  return { child, exited, output: () => [...lines, partial].filter(Boolean).join('\n') };
};

const apiAnswers = async (url: string): Promise<boolean> => {
  try {
    const res = await fetch(`${url}/api/dtmsvr/version`, { signal: AbortSignal.timeout(1_000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
};

/**
 * Runs a role as a real child process: `node --import tsx services/<role>/src/main.ts` from the repo root, with
 * the defaults above and `env` (REDIS_URL or REDIS_CLUSTER_NODES, and KEY_PREFIX are required; PORT is picked when not given). Resolves
 * once it is ready: the API answers `GET /api/dtmsvr/version` with 200 ('api', 'tm'), and a new BullMQ worker
 * connection is registered on the pass queue ('worker', 'tm'). Rejects with its last output if it exits or does
 * not get ready in time. The child is SIGKILLed when the test process exits or gets SIGTERM/SIGINT/SIGHUP.
 */
export const spawnRole = async (
  role: Role,
  env: Record<string, string>,
  opts: SpawnOptions = {},
): Promise<RoleProcess> => {
  installExitHook();
  const redisUrl = env['REDIS_URL'];
  const clusterNodes = env['REDIS_CLUSTER_NODES'];
  const keyPrefix = env['KEY_PREFIX'];
  if (!(redisUrl || clusterNodes) || !keyPrefix) {
    throw new Error(`spawnRole(${role}) needs REDIS_URL or REDIS_CLUSTER_NODES, and KEY_PREFIX`);
  }
  const hasApi = role !== 'worker';
  const hasWorker = role !== 'api';
  const readyTimeoutMs = opts.readyTimeoutMs ?? 30_000;

  // A worker registers on every pass queue; the first one tells it is up.
  const cluster = clusterNodes ? new Cluster([...parseRedisClusterNodes(clusterNodes).nodes]) : null;
  cluster?.on('error', () => undefined);
  const queue = !hasWorker
    ? null
    : cluster
      ? new Queue(passQueueNames({ prefix: keyPrefix, partitions: 1, queues: 1, hashTagged: true })[0]!, {
          connection: cluster,
        })
      : new Queue(passQueueName(keyPrefix), { connection: bullConnection(redisUrl!) });
  queue?.on('error', () => undefined);
  try {
    // Connections already registered (other workers' live or dying ones) do not count as this one's.
    const before = queue ? await workerClientIds(queue) : new Set<string>();
    for (let attempt = 1; ; attempt++) {
      const port = env['PORT'] ?? (hasApi ? String(await freePort()) : '0');
      const fullEnv: Record<string, string> = {};
      for (const [k, v] of Object.entries(process.env)) if (v !== undefined) fullEnv[k] = v;
      Object.assign(fullEnv, DEFAULT_ENV, { PORT: port }, env);
      const proc = launch(role, fullEnv);
      const url = hasApi ? `http://127.0.0.1:${port}` : '';
      let exitedEarly = false;
      void proc.exited.then(() => (exitedEarly = true));

      const deadline = Date.now() + readyTimeoutMs;
      let apiReady = !hasApi;
      let workerReady = !hasWorker;
      while (!(apiReady && workerReady) && !exitedEarly && Date.now() < deadline) {
        if (!apiReady) apiReady = await apiAnswers(url);
        if (!workerReady && queue) {
          const now = await workerClientIds(queue).catch(() => new Set<string>());
          workerReady = [...now].some((id) => !before.has(id));
        }
        if (!(apiReady && workerReady)) await pause(50);
      }
      if (apiReady && workerReady && !exitedEarly) {
        const { child } = proc;
        return {
          role,
          pid: child.pid!,
          env: fullEnv,
          url,
          exited: proc.exited,
          get running() {
            return child.exitCode === null && child.signalCode === null;
          },
          async kill(signal: NodeJS.Signals = 'SIGTERM') {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            return proc.exited;
          },
          output: proc.output,
        };
      }
      const diedByItself = exitedEarly;
      if (!diedByItself) proc.child.kill('SIGKILL');
      const { code, signal } = await proc.exited;
      const portTaken = /EADDRINUSE/.test(proc.output());
      if (portTaken && !env['PORT'] && attempt < START_ATTEMPTS) continue;
      const why = diedByItself
        ? `exited while starting (code ${code}, signal ${signal})`
        : `not ready after ${readyTimeoutMs} ms (${[
            hasApi ? `api ${apiReady ? 'answers' : 'does not answer'}` : '',
            hasWorker ? `worker ${workerReady ? 'registered' : 'not registered'}` : '',
          ]
            .filter(Boolean)
            .join(', ')})`;
      throw new Error(`${role} ${why}; last output:\n${proc.output()}`);
    }
  } finally {
    await queue?.close().catch(() => undefined);
    cluster?.disconnect();
  }
};

/** Sends `signal` (default SIGTERM) to each process and waits until all have exited; skips undefined entries. */
export const stopAll = async (
  procs: readonly (RoleProcess | undefined)[],
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<void> => {
  await Promise.all(procs.flatMap((p) => (p ? [p.kill(signal)] : [])));
};
