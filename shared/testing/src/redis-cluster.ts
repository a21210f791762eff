import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort } from './free-port';
import { startRedis, type RedisProcess } from './redis-server';

const run = promisify(execFile);

/** Options of a test Redis Cluster. */
export interface RedisClusterOptions {
  /** Masters (no replicas); the 16,384 slots are split evenly between them. Default 3. */
  readonly masters?: number;
  /** Keep an append-only file on every node, so a killed node comes back with its keys. Default false. */
  readonly appendonly?: boolean;
}

/** A real Redis Cluster of `redis-server` child processes owned by a test. */
export interface RedisClusterProcess {
  /** The masters, in the order of `nodes`. */
  readonly masters: readonly RedisProcess[];
  /** `127.0.0.1:port` of every master: REDIS_CLUSTER_NODES's list form is `nodes.join(',')`. */
  readonly nodes: readonly string[];
  /** `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,…`, REDIS_CLUSTER_NODES's URL form. */
  readonly url: string;
  /** SIGKILLs master `i`; resolves once it exited. */
  kill(i: number): Promise<void>;
  /** Starts master `i` again on its port and directory (it rejoins from its nodes.conf); resolves once the cluster is ok. */
  restart(i: number): Promise<void>;
  /** Resolves once every running master reports `cluster_state:ok`. */
  waitOk(timeoutMs?: number): Promise<void>;
  /** Stops every node. */
  stop(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const clusterState = async (port: number): Promise<string> => {
  try {
    const { stdout } = await run('redis-cli', ['-p', String(port), 'cluster', 'info'], { timeout: 5_000 });
    return /cluster_state:(\w+)/.exec(stdout)?.[1] ?? 'unknown';
  } catch {
    return 'unreachable';
  }
};

/** One node with cluster mode on; its cluster bus on a port of its own (Redis 7 `cluster-port`), not port + 10000. */
const startNode = async (appendonly: boolean): Promise<RedisProcess> => {
  const busPort = await freePort();
  return startRedis({
    appendonly,
    extraArgs: [
      '--cluster-enabled', 'yes',
      '--cluster-config-file', 'nodes.conf',
      '--cluster-port', String(busPort),
      '--cluster-node-timeout', '2000',
    ],
  }); // prettier-ignore
};

/**
 * Starts `masters` redis-server processes in cluster mode on free ports, joins them with
 * `redis-cli --cluster create … --cluster-replicas 0 --cluster-yes`, and resolves once every master reports
 * `cluster_state:ok`. The nodes are killed when the test process exits, if not stopped before.
 */
export const startRedisCluster = async (opts: RedisClusterOptions = {}): Promise<RedisClusterProcess> => {
  const count = opts.masters ?? 3;
  if (count < 3) throw new RangeError('redis-cli --cluster create needs at least 3 masters');
  const masters = await Promise.all(Array.from({ length: count }, () => startNode(opts.appendonly ?? false)));
  const nodes = masters.map((m) => `127.0.0.1:${m.port}`);
  const stop = async (): Promise<void> => void (await Promise.all(masters.map((m) => m.stop())));
  const down = new Set<number>();
  const waitOk = async (timeoutMs = 30_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = await Promise.all(masters.map(async (m, i) => (down.has(i) ? 'ok' : clusterState(m.port))));
      if (states.every((s) => s === 'ok')) return;
      if (Date.now() > deadline) throw new Error(`cluster not ok after ${timeoutMs} ms: ${states.join(', ')}`);
      await sleep(100);
    }
  };
  try {
    await run('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'], {
      timeout: 60_000,
    });
    await waitOk();
  } catch (err) {
    await stop();
    throw err;
  }
  const master = (i: number): RedisProcess => {
    const m = masters[i];
    if (!m) throw new RangeError(`no master ${i} (the cluster has ${masters.length})`);
    return m;
  };
  return {
    masters,
    nodes,
    url: `redis+cluster://${nodes.join(',')}`,
    async kill(i) {
      await master(i).kill();
      down.add(i);
    },
    async restart(i) {
      await master(i).start();
      down.delete(i);
      await waitOk();
    },
    waitOk,
    stop,
  };
};
