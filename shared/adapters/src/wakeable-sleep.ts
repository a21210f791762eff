/** Pauses that a stop can cut short: the subscribers back off between retries and must still stop at once. */
export class WakeableSleep {
  private readonly sleepers = new Set<() => void>();

  /** Waits `ms`, or less if `wakeAll` is called meanwhile. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }

  /** Ends every pause under way. */
  wakeAll(): void {
    for (const wake of this.sleepers) wake();
  }
}
