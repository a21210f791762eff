import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort } from './free-port';
import { startRedis, type RedisProcess } from './redis-server';

const run = promisify(execFile);

/** Options of a test Redis Cluster. */
export interface RedisClusterOptions {
  /** Masters; the 16,384 slots are split evenly between them. Default 3. */
  readonly masters?: number;
  /** Replicas of each master (redis-cli chooses which node follows which). Default 0. */
  readonly replicas?: number;
  /** Keep an append-only file on every node, so a killed node comes back with its keys. Default false. */
  readonly appendonly?: boolean;
}

/** A real Redis Cluster of `redis-server` child processes owned by a test. */
export interface RedisClusterProcess {
  /** The masters as the cluster was created, in the order of `nodes` (a failover does not change it). */
  readonly masters: readonly RedisProcess[];
  /** The replicas as the cluster was created (none unless `replicas` was given). */
  readonly replicas: readonly RedisProcess[];
  /** `127.0.0.1:port` of every master: REDIS_CLUSTER_NODES's list form is `nodes.join(',')`. */
  readonly nodes: readonly string[];
  /** `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,…`, REDIS_CLUSTER_NODES's URL form (the masters). */
  readonly url: string;
  /** The replicas that followed master `i` when the cluster was created. */
  replicaOf(i: number): readonly RedisProcess[];
  /** SIGKILLs master `i`; resolves once it exited. */
  kill(i: number): Promise<void>;
  /** Starts master `i` again on its port and directory (it rejoins from its nodes.conf); resolves once the cluster is ok. */
  restart(i: number): Promise<void>;
  /** Resolves once every running node reports `cluster_state:ok`. */
  waitOk(timeoutMs?: number): Promise<void>;
  /**
   * After `kill(i)`: resolves to the replica of master `i` that was promoted, once every running node reports
   * `cluster_state:ok` and sees each of master `i`'s slots served by a running master.
   */
  waitFailover(i: number, timeoutMs?: number): Promise<RedisProcess>;
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

/** One line of `CLUSTER NODES`, as far as the harness needs it. */
interface NodeLine {
  readonly id: string;
  readonly port: number;
  readonly master: boolean;
  /** The id of the master it follows, for a replica. */
  readonly follows: string | undefined;
  /** Slot ranges `[first, last]` it serves, for a master. */
  readonly slots: readonly (readonly [number, number])[];
}

/** `CLUSTER NODES` as node `port` sees it; undefined when it does not answer. */
const clusterNodes = async (port: number): Promise<NodeLine[] | undefined> => {
  try {
    const { stdout } = await run('redis-cli', ['-p', String(port), 'cluster', 'nodes'], { timeout: 5_000 });
    return stdout
      .split('\n')
      .filter((line) => line.trim())
      .map((line) => {
        const [id = '', addr = '', flags = '', follows = '-', , , , , ...slots] = line.trim().split(' ');
        return {
          id,
          port: Number(/:(\d+)@/.exec(addr)?.[1]),
          master: flags.split(',').includes('master'),
          follows: follows === '-' ? undefined : follows,
          slots: slots
            .filter((s) => !s.startsWith('['))
            .map((s) => {
              const [first = '', last = first] = s.split('-');
              return [Number(first), Number(last)] as const;
            }),
        };
      });
  } catch {
    return undefined;
  }
};

/** One node with cluster mode on; its cluster bus on a port of its own (Redis 7 `cluster-port`), not port + 10000. */
const startNode = async (appendonly: boolean, withReplicas: boolean): Promise<RedisProcess> => {
  const busPort = await freePort();
  return startRedis({
    appendonly,
    extraArgs: [
      '--cluster-enabled', 'yes',
      '--cluster-config-file', 'nodes.conf',
      '--cluster-port', String(busPort),
      '--cluster-node-timeout', '2000',
      // A replica may take over however long it has been cut off from its master (a test kills the master
      // right after writing): with the default factor a replica whose link looks stale would refuse.
      ...(withReplicas ? ['--cluster-replica-validity-factor', '0'] : []),
    ],
  }); // prettier-ignore
};

/**
 * Starts `masters × (1 + replicas)` redis-server processes in cluster mode on free ports, joins them with
 * `redis-cli --cluster create … --cluster-replicas N --cluster-yes`, reads from `CLUSTER NODES` which nodes
 * redis-cli made masters and which replica follows which, and resolves once every node reports
 * `cluster_state:ok` and every replica's link to its master is up. The nodes are killed when the test process
 * exits, if not stopped before.
 */
export const startRedisCluster = async (opts: RedisClusterOptions = {}): Promise<RedisClusterProcess> => {
  const count = opts.masters ?? 3;
  const perMaster = opts.replicas ?? 0;
  if (count < 3) throw new RangeError('redis-cli --cluster create needs at least 3 masters');
  if (!Number.isInteger(perMaster) || perMaster < 0) throw new RangeError(`replicas must be ≥ 0: ${perMaster}`);
  const all = await Promise.all(
    Array.from({ length: count * (1 + perMaster) }, () => startNode(opts.appendonly ?? false, perMaster > 0)),
  );
  const stop = async (): Promise<void> => void (await Promise.all(all.map((n) => n.stop())));
  const down = new Set<RedisProcess>();
  const waitOk = async (timeoutMs = 30_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = await Promise.all(all.map(async (n) => (down.has(n) ? 'ok' : clusterState(n.port))));
      if (states.every((s) => s === 'ok')) return;
      if (Date.now() > deadline) throw new Error(`cluster not ok after ${timeoutMs} ms: ${states.join(', ')}`);
      await sleep(100);
    }
  };
  const byPort = new Map(all.map((n) => [n.port, n]));
  let masters: RedisProcess[];
  let replicas: RedisProcess[];
  let followers: RedisProcess[][];
  let slotsOf: (readonly (readonly [number, number])[])[];
  try {
    const addresses = all.map((n) => `127.0.0.1:${n.port}`);
    await run(
      'redis-cli',
      ['--cluster', 'create', ...addresses, '--cluster-replicas', String(perMaster), '--cluster-yes'],
      { timeout: 60_000 },
    );
    await waitOk();
    // Roles as every node agrees on them: redis-cli sends CLUSTER REPLICATE after the slots are assigned, and
    // a replica is one once its link to the master is up.
    const view = await (async () => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const lines = await clusterNodes(all[0]!.port);
        const masterLines = lines?.filter((l) => l.master) ?? [];
        const linked = await Promise.all(
          (lines ?? [])
            .filter((l) => !l.master)
            .map(async (l) => {
              const { stdout } = await run('redis-cli', ['-p', String(l.port), 'info', 'replication']);
              return stdout.includes('master_link_status:up');
            }),
        );
        if (lines && masterLines.length === count && linked.length === count * perMaster && linked.every(Boolean)) {
          return lines;
        }
        if (Date.now() > deadline) throw new Error(`cluster roles not settled after 30 s: ${JSON.stringify(lines)}`);
        await sleep(100);
      }
    })();
    const masterLines = view
      .filter((l) => l.master)
      .sort((a, b) => all.indexOf(byPort.get(a.port)!) - all.indexOf(byPort.get(b.port)!));
    masters = masterLines.map((l) => byPort.get(l.port)!);
    followers = masterLines.map((m) => view.filter((l) => l.follows === m.id).map((l) => byPort.get(l.port)!));
    slotsOf = masterLines.map((m) => m.slots);
    replicas = followers.flat();
  } catch (err) {
    await stop();
    throw err;
  }
  const nodes = masters.map((m) => `127.0.0.1:${m.port}`);
  const master = (i: number): RedisProcess => {
    const m = masters[i];
    if (!m) throw new RangeError(`no master ${i} (the cluster has ${masters.length})`);
    return m;
  };
  /** Whether node `port` sees every slot of master `i` served by a running master; which one serves the first. */
  const servedElsewhere = async (port: number, i: number): Promise<RedisProcess | undefined> => {
    const lines = await clusterNodes(port);
    if (!lines) return undefined;
    const owner = (slot: number): RedisProcess | undefined => {
      const line = lines.find((l) => l.master && l.slots.some(([a, b]) => a <= slot && slot <= b));
      const node = line && byPort.get(line.port);
      return node && !down.has(node) ? node : undefined;
    };
    const owners = (slotsOf[i] ?? []).flatMap(([a, b]) => [owner(a), owner(b)]);
    return owners.every((o) => o !== undefined) ? owners[0] : undefined;
  };
  return {
    masters,
    replicas,
    nodes,
    url: `redis+cluster://${nodes.join(',')}`,
    replicaOf: (i) => (master(i), followers[i] ?? []),
    async kill(i) {
      await master(i).kill();
      down.add(master(i));
    },
    async restart(i) {
      await master(i).start();
      down.delete(master(i));
      await waitOk();
    },
    waitOk,
    async waitFailover(i, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const running = all.filter((n) => !down.has(n));
        const seen = await Promise.all(running.map((n) => servedElsewhere(n.port, i)));
        const promoted = seen[0];
        const states = await Promise.all(running.map((n) => clusterState(n.port)));
        if (
          promoted &&
          followers[i]?.includes(promoted) &&
          seen.every((s) => s === promoted) &&
          states.every((s) => s === 'ok')
        ) {
          return promoted;
        }
        if (Date.now() > deadline) {
          throw new Error(`no replica of master ${i} took over after ${timeoutMs} ms: ${states.join(', ')}`);
        }
        await sleep(100);
      }
    },
    stop,
  };
};
