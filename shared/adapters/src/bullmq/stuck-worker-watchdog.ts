/** What {@link StuckWorkerWatchdog} watches: one consumer of one queue. */
export interface Watched {
  /** Epoch ms of the last sign of life: a job started, or the queue found empty. */
  lastActivity(): number;
  /** Whether jobs are ready for it: waiting, or delayed past their time. */
  hasBacklog(): Promise<boolean>;
  /** Replaces the consumer with a fresh one (new connections). */
  restart(): Promise<void>;
}

/**
 * Restarts a queue consumer that stopped taking jobs while jobs wait for it. BullMQ leaves reconnection to ioredis,
 * and after a Redis Cluster failover a worker's blocking connection can stay parked on the dead master for good:
 * the worker looks alive, its jobs wait, nothing runs them (BullMQ's maintainers advise replacing such a worker).
 * Every `checkMs` it asks each consumer silent for `quietMs` whether jobs are ready for it, and restarts it if so;
 * the jobs it held when cut run again once their locks expire, as after a crash.
 */
export class StuckWorkerWatchdog {
  private timer: ReturnType<typeof setInterval> | undefined;
  private checking = false;

  constructor(
    private readonly watched: readonly Watched[],
    private readonly opts: {
      readonly checkMs: number;
      readonly quietMs: number;
      readonly now?: () => number;
      readonly onRestart?: (index: number) => void;
      readonly onError?: (err: unknown) => void;
    },
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.check(), this.opts.checkMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One round; resolves to the indexes it restarted. */
  async check(): Promise<number[]> {
    if (this.checking) return [];
    this.checking = true;
    try {
      const now = (this.opts.now ?? Date.now)();
      const restarted: number[] = [];
      for (const [i, w] of this.watched.entries()) {
        if (now - w.lastActivity() < this.opts.quietMs) continue;
        try {
          if (!(await w.hasBacklog())) continue;
          await w.restart();
          restarted.push(i);
          this.opts.onRestart?.(i);
        } catch (err) {
          // Redis unreachable for the probe: nothing to learn now, ask again next round.
          this.opts.onError?.(err);
        }
      }
      return restarted;
    } finally {
      this.checking = false;
    }
  }
}
