import { startRedis, type RedisProcess } from '@dtm-ts/testing';

/** A Redis that loses no acknowledged write when SIGKILLed; see {@link startDurableRedis}. */
export interface DurableRedis {
  /** `redis://127.0.0.1:<port>`, the same across restarts. */
  readonly url: string;
  readonly port: number;
  /** SIGKILL, as a crash (no shutdown, no final flush); resolves once it exited. No-op if not running. */
  kill(): Promise<void>;
  /** Starts it again on the same port from the same AOF (SIGKILLing it first if it runs); resolves once it answers PING. */
  restart(): Promise<void>;
  /** SIGTERM and wait: for the end of a test. */
  stop(): Promise<void>;
}

/**
 * Starts a `redis-server` with `appendonly yes` and `appendfsync always` in a directory of its own, on `opts.port`
 * (default: a free one) of 127.0.0.1. With `always` Redis writes and fsyncs the AOF before it answers a write, so
 * every write a client saw acknowledged is still there after `kill` and `restart`; a write in flight at the kill
 * may or may not be (its client got an error, which is not a "no"). (Against a process kill alone `everysec` mostly
 * holds too, since Redis write(2)s the AOF before replying; but it may postpone that write while an fsync is slow,
 * and only `always` also survives the machine going down.) The process dies with the test process.
 *
 * It listens on 127.0.0.1 only: to reach it from a network namespace, put a fault proxy listening on the
 * namespace's `hostIp` in front of it (`startFaultProxy(target, { listenHost: ns.hostIp })`).
 */
export const startDurableRedis = async (opts: { port?: number } = {}): Promise<DurableRedis> => {
  const redis: RedisProcess = await startRedis({ appendonly: true, appendfsync: 'always', port: opts.port });
  return {
    url: redis.url,
    port: redis.port,
    kill: () => redis.kill(),
    async restart() {
      await redis.kill();
      await redis.start();
    },
    stop: () => redis.stop(),
  };
};
