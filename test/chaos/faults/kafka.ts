import { startKafkaMock, type KafkaMock } from '@dtm-ts/testing';

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
  /** A network outage keeping the data: open connections reset, new ones refused, until `restore`. */
  cut(): Promise<void>;
  restore(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the mock cluster (3 brokers by default) behind one proxy per broker on 127.0.0.1. */
export const startRestartableKafka = async (opts: { brokers?: number } = {}): Promise<RestartableKafka> => {
  const mock: KafkaMock = await startKafkaMock({ brokers: opts.brokers ?? 3, proxy: true });
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
    cut: () => mock.cut(),
    restore: () => mock.restore(),
    stop: () => mock.stop(),
  };
};
