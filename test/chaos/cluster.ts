import type { ChildProcess } from 'node:child_process';
import { spawnRole, type RoleProcess } from '../support/processes';
import { setTimeout as pause } from 'node:timers/promises';

/** One API or worker process of the TM, killed and restarted by the chaos run. */
export interface Slot {
  readonly role: 'api' | 'worker';
  readonly label: string;
  /** Extra environment (the skewed clock's LD_PRELOAD and FAKETIME). */
  readonly env: Record<string, string>;
  proc: RoleProcess | undefined;
  /** True while it is down (killed) or starting again. */
  down: boolean;
}

/** The TM of a chaos run: several API processes and several worker processes sharing one Redis. */
export class ChaosCluster {
  readonly apis: Slot[] = [];
  readonly workers: Slot[] = [];
  /** A restart that failed for good (the run reports it). */
  readonly startFailures: string[] = [];
  private stopped = false;
  private readonly restarts = new Set<Promise<void>>();

  constructor(private readonly env: Record<string, string>) {}

  /** Starts `apis` API processes and one worker per entry of `workerEnvs` (its extra environment). */
  async start(apis: number, workerEnvs: readonly Record<string, string>[]): Promise<void> {
    for (let i = 0; i < apis; i++)
      this.apis.push({ role: 'api', label: `api${i}`, env: {}, proc: undefined, down: true });
    workerEnvs.forEach((env, i) =>
      this.workers.push({ role: 'worker', label: `worker${i}`, env, proc: undefined, down: true }),
    );
    // All at once: on a loaded machine each start waits long for CPU (tsx compiles), and they do not depend on
    // each other.
    await Promise.all([...this.apis, ...this.workers].map((slot) => this.bringUp(slot)));
  }

  /** URLs of the API processes that are up now. */
  liveApis(): string[] {
    return this.apis.filter((s) => !s.down && s.proc?.running).map((s) => s.proc!.url);
  }

  /** Up slots of a role, for a fault to pick from. */
  up(role: 'api' | 'worker'): Slot[] {
    return (role === 'api' ? this.apis : this.workers).filter((s) => !s.down && s.proc?.running);
  }

  /** SIGKILLs the slot's process and starts it again after `downMs` (in the background). */
  kill(slot: Slot, downMs: number): void {
    const proc = slot.proc;
    if (!proc || slot.down) return;
    slot.down = true;
    const restart = (async () => {
      await proc.kill('SIGKILL');
      await pause(downMs);
      await this.bringUp(slot);
    })();
    this.restarts.add(restart);
    void restart.finally(() => this.restarts.delete(restart));
  }

  /** Starts the slot's process, retrying (Redis may be down or black-holed right now) until it is up or stopped. */
  private async bringUp(slot: Slot): Promise<void> {
    for (let attempt = 1; !this.stopped; attempt++) {
      try {
        slot.proc = await spawnRole(slot.role, { ...this.env, ...slot.env }, { readyTimeoutMs: 60_000 });
        slot.down = false;
        return;
      } catch (err) {
        if (attempt >= 10) {
          this.startFailures.push(`${slot.label}: ${(err as Error).message.split('\n')[0]}`);
          return;
        }
        await pause(1_000);
      }
    }
  }

  /** Waits until every restart under way has finished, so that every slot is up again. */
  async settle(): Promise<void> {
    while (this.restarts.size > 0) await Promise.all([...this.restarts]);
  }

  /** SIGKILLs everything (the run is over). */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.restarts].map((p) => p.catch(() => undefined)));
    await Promise.all([...this.apis, ...this.workers].flatMap((s) => (s.proc ? [s.proc.kill('SIGKILL')] : [])));
  }
}

/** Resolves when `child` has exited. */
export const exitOf = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once('exit', () => resolve()));
