import { WakeableSleep } from './wakeable-sleep';

/**
 * The life of a subscriber's loop: started once, told to stop (which cuts its pauses short), awaited, and then
 * free to start again. The loop checks `stopped` between its steps.
 */
export class BackgroundLoop {
  private running: Promise<void> | undefined;
  private halted = false;
  private readonly sleeps = new WakeableSleep();

  /** Whether a stop came since the last start. */
  get stopped(): boolean {
    return this.halted;
  }

  /** Runs `loop` in the background; throws if the previous run was not stopped. */
  start(loop: () => Promise<void>): void {
    if (this.running) throw new Error('subscriber already started');
    this.halted = false;
    this.running = loop();
  }

  /** Waits `ms`, or less if a stop comes meanwhile; not at all once stopped. */
  pause(ms: number): Promise<void> {
    return this.halted ? Promise.resolve() : this.sleeps.sleep(ms);
  }

  /**
   * Sets `stopped`, ends the pause under way, runs `interrupt` (to end what a step is waiting on), and resolves
   * once the loop ended.
   */
  async stop(interrupt?: () => Promise<void>): Promise<void> {
    this.halted = true;
    this.sleeps.wakeAll();
    await interrupt?.();
    await this.running;
    this.running = undefined;
  }
}
