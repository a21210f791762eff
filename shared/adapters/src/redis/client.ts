import type { ChainableCommander, Cluster, ClusterOptions, Redis } from 'ioredis';

/** A connection to one Redis or to a Redis Cluster (REDIS_CLUSTER_NODES): every Redis adapter takes either. */
export type RedisClient = Redis | Cluster;

/**
 * How the adapters want a Cluster client opened. Auto-pipelining, so that commands of one tick leave as one
 * write per master. XGROUP and XINFO name their key after a subcommand, which ioredis's auto-pipelining takes
 * for the key: it would route them to the slot of "CREATE" and fail with MOVED inside a pipeline. Sent on their
 * own, ioredis follows the MOVED to the right master.
 */
export const CLUSTER_CLIENT_OPTIONS: ClusterOptions = {
  enableAutoPipelining: true,
  autoPipeliningIgnoredCommands: ['xgroup', 'xinfo'],
};

type Command = (...args: unknown[]) => Promise<unknown>;

/**
 * A pipeline whose commands may live on different cluster nodes. ioredis refuses a cluster pipeline whose keys
 * are served by different masters, so each command is sent on its own; with auto-pipelining on (as the runtime
 * opens its clusters) the commands of one tick still leave as one write per node. Commands are sent as they are
 * queued, not at `exec`; `exec` collects the replies in order, as a pipeline's.
 */
const fanOutPipeline = (cluster: Cluster): ChainableCommander => {
  const replies: Promise<[Error | null, unknown]>[] = [];
  const commands = cluster as unknown as Record<string, Command>;
  const pipeline: ChainableCommander = new Proxy({} as ChainableCommander, {
    get(_, name) {
      if (name === 'exec') return () => Promise.all(replies);
      if (name === 'length') return replies.length;
      // Not a thenable: `await pipeline` must not call a command named `then`.
      if (typeof name !== 'string' || name === 'then' || typeof commands[name] !== 'function') return undefined;
      return (...args: unknown[]) => {
        replies.push(
          commands[name]!.apply(cluster, args).then(
            (reply): [null, unknown] => [null, reply],
            (err: Error): [Error, null] => [err, null],
          ),
        );
        return pipeline;
      };
    },
  });
  return pipeline;
};

/**
 * Several commands in one round trip, replies in order: a real pipeline on one Redis (one write, as before);
 * on a cluster, commands whose keys may be anywhere (see fanOutPipeline). Neither is atomic.
 */
export const pipelineOf = (redis: RedisClient): ChainableCommander =>
  redis.isCluster ? fanOutPipeline(redis as Cluster) : redis.pipeline();

/** The masters to visit for whole-keyspace work (SCAN, INFO): the cluster's masters, or the one Redis. */
export const masters = async (redis: RedisClient): Promise<Redis[]> => {
  if (!redis.isCluster) return [redis as Redis];
  const cluster = redis as Cluster;
  // Before the first command the client may not know the slots yet: any command waits until it does.
  if (cluster.nodes('master').length === 0) await cluster.ping();
  return cluster.nodes('master');
};

/**
 * Every key matching `match`, a page at a time, from every master (SCAN: a live Redis is not blocked). Pages may
 * repeat a key (SCAN may); a key that moves between masters during the scan (resharding) may be missed.
 */
export async function* scanKeys(redis: RedisClient, match: string, count = 1000): AsyncIterable<string[]> {
  for (const node of await masters(redis)) {
    for await (const keys of node.scanStream({ match, count })) {
      if ((keys as string[]).length) yield keys as string[];
    }
  }
}
