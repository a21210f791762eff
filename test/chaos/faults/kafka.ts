import { startKafkaMock, type KafkaMock } from '@dtm-ts/testing';
import { startFaultProxy, type FaultProxy, type ProxyMode } from './tcp-proxy';

/**
 * librdkafka's mock cluster (through `kcat`) behind fixed addresses, with the two faults the mock allows.
 *
 * - `restart()` is a crash and a start: the cluster process is SIGKILLed and a fresh one comes up behind the same
 *   addresses. The mock holds everything in memory, so a restart loses every topic, every record and every
 *   committed consumer-group offset; topics come back empty on first use and offsets start again at 0. Clients
 *   reconnect by themselves (their connections were reset, their metadata is refreshed on the first error).
 *   How a harness counts it: a record the TM had delivered (its branch succeeded) before a restart and that no
 *   consumer received before that restart is lost with the broker's memory, not by the TM: keep the set of records
 *   received when each restart begins (`restarts` says how many there were) and excuse only those missing records
 *   whose branch succeeded before the last restart; offsets repeat across restarts, so identify records by the
 *   `dtm-gid` and `dtm-branch-id` headers, never by offset.
 * - `cut()`/`restore()` is what clients see of a real broker restart, whose log is on disk: every open connection
 *   is reset and new ones are refused until `restore`, while the cluster keeps its data. After it a missing record
 *   is a real loss. Prefer it wherever "Kafka records missing: 0" must hold strictly.
 * - `set(mode)`/`resetAll()`: a fault TCP proxy sits in front of every broker, and the brokers are advertised at
 *   the fault proxies' ports, so latency, resets and black holes reach every client connection (a fault proxy in
 *   front of the bootstrap address alone would only see the first one: clients then dial the advertised brokers).
 */
export interface RestartableKafka {
  /** Comma-separated `host:port` of the brokers (a KAFKA_BROKERS value), the same across restarts. */
  readonly brokers: string;
  /** The same as a list, as kafkajs takes it. */
  readonly brokerList: readonly string[];
  /** Restarts so far. */
  readonly restarts: number;
  /** SIGKILL and a fresh, empty cluster behind the same addresses; resolves once it serves. */
  restart(): Promise<void>;
  /** The first half of `restart`, for a longer downtime: SIGKILL; new connections are refused. */
  kill(): Promise<void>;
  /** The second half: a fresh cluster behind the same addresses. No-op while running. */
  start(): Promise<void>;
  /** Faults on the way to every broker (see ProxyMode); `set({})` is a clean pass-through again. */
  set(mode: ProxyMode): void;
  /** Resets every open client connection to every broker. */
  resetAll(): void;
  /** A network outage keeping the data: open connections reset, new ones refused, until `restore`. */
  cut(): Promise<void>;
  restore(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the mock cluster (3 brokers by default) behind one proxy per broker on 127.0.0.1, fault proxies in front. */
export const startRestartableKafka = async (
  opts: { brokers?: number; random?: () => number } = {},
): Promise<RestartableKafka> => {
  const faults: FaultProxy[] = [];
  const front = async (_broker: number, proxyPort: number): Promise<number> => {
    const proxy = await startFaultProxy({ host: '127.0.0.1', port: proxyPort }, { random: opts.random });
    faults.push(proxy);
    return proxy.port;
  };
  let mock: KafkaMock;
  try {
    mock = await startKafkaMock({ brokers: opts.brokers ?? 3, proxy: true, front });
  } catch (err) {
    await Promise.all(faults.map((f) => f.close()));
    throw err;
  }
  let restarts = 0;
  const kill = async (): Promise<void> => {
    restarts++;
    await mock.kill();
  };
  return {
    brokers: mock.bootstrap,
    brokerList: mock.brokers,
    get restarts() {
      return restarts;
    },
    async restart() {
      await kill();
      await mock.start();
    },
    kill,
    start: () => mock.start(),
    set(mode) {
      for (const f of faults) f.set(mode);
    },
    resetAll() {
      for (const f of faults) f.resetAll();
    },
    cut: () => mock.cut(),
    restore: () => mock.restore(),
    async stop() {
      await mock.stop();
      await Promise.all(faults.map((f) => f.close()));
    },
  };
};
