import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '@dtm-ts/telemetry';

/** Sent by a TM process once its API listens; the primary counts a start as failed until then. */
export const READY_MESSAGE = 'dtm-ts:ready';

/** Restart delays of a crashed process: the first after `firstMs`, doubling while it keeps crashing. */
export interface RestartBackoff {
  readonly firstMs: number;
  readonly maxMs: number;
  /** A process that lived this long counts as healthy: its next crash restarts after `firstMs` again. */
  readonly healthyAfterMs: number;
}

export const DEFAULT_BACKOFF: RestartBackoff = { firstMs: 500, maxMs: 30_000, healthyAfterMs: 30_000 };

export interface TmProcesses {
  /** Pids of the processes running now. */
  pids(): number[];
  /** SIGTERM to every process (each shuts down gracefully), SIGKILL to those still alive after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

interface Slot {
  readonly index: number;
  worker: Worker | undefined;
  startedAt: number;
  /** Crashes in a row without a healthy life between them. */
  crashes: number;
  restart: NodeJS.Timeout | undefined;
}

/** Resolves when the worker says it is ready; rejects when it exits first. */
const readiness = (worker: Worker, index: number): Promise<void> =>
  new Promise((resolve, reject) => {
    const onMessage = (msg: unknown): void => {
      if (msg !== READY_MESSAGE) return;
      worker.off('exit', onExit);
      resolve();
    };
    const onExit = (code: number | null, signal: string | null): void => {
      worker.off('message', onMessage);
      reject(new Error(`TM process ${index} exited before it was ready (code ${code}, signal ${signal})`));
    };
    worker.on('message', onMessage);
    worker.once('exit', onExit);
  });

/**
 * The primary of `TM_PROCESSES`: forks `count` TM processes with node:cluster (the primary holds the listening
 * sockets of PORT and GRPC_PORT and hands each new connection to the next process in turn), waits until every
 * one is ready, and from then on restarts a process that exits, after a backoff that doubles while it keeps
 * crashing. Rejects, after stopping what started, when a process fails its first start (a bad port, an
 * unreachable Redis): restarting would not help.
 */
export const startTmProcesses = async (
  count: number,
  env: Record<string, string>,
  logger: Logger,
  backoff: RestartBackoff = DEFAULT_BACKOFF,
): Promise<TmProcesses> => {
  let stopping = false;
  const slots: Slot[] = Array.from({ length: count }, (_, index) => ({
    index,
    worker: undefined,
    startedAt: 0,
    crashes: 0,
    restart: undefined,
  }));

  const restartDelay = (slot: Slot): number => {
    slot.crashes = Date.now() - slot.startedAt >= backoff.healthyAfterMs ? 1 : slot.crashes + 1;
    return Math.min(backoff.maxMs, backoff.firstMs * 2 ** (slot.crashes - 1));
  };

  const fork = (slot: Slot): Worker => {
    const worker = cluster.fork({ ...env, TM_PROCESS_INDEX: String(slot.index) });
    slot.worker = worker;
    slot.startedAt = Date.now();
    worker.once('exit', (code, signal) => {
      slot.worker = undefined;
      if (stopping) return;
      const delayMs = restartDelay(slot);
      logger.warn(
        { process: slot.index, pid: worker.process.pid, code, signal, restartInMs: delayMs },
        'TM process exited; restarting it',
      );
      slot.restart = setTimeout(() => {
        slot.restart = undefined;
        if (!stopping) fork(slot);
      }, delayMs);
    });
    return worker;
  };

  // Within runMain's 15 s: the primary must still stop the redis-server after the processes.
  const stop = async (graceMs = 10_000): Promise<void> => {
    stopping = true;
    for (const slot of slots) clearTimeout(slot.restart);
    const running = slots.flatMap((s) => (s.worker ? [s.worker] : []));
    await Promise.all(
      running.map(
        (worker) =>
          new Promise<void>((resolve) => {
            if (worker.process.exitCode !== null || worker.process.signalCode !== null) return resolve();
            const force = setTimeout(() => worker.process.kill('SIGKILL'), graceMs);
            worker.once('exit', () => {
              clearTimeout(force);
              resolve();
            });
            worker.process.kill('SIGTERM');
          }),
      ),
    );
  };

  try {
    await Promise.all(slots.map((slot) => readiness(fork(slot), slot.index)));
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    pids: () => slots.flatMap((s) => (s.worker?.process.pid ? [s.worker.process.pid] : [])),
    stop,
  };
};
