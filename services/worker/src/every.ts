/** A job run every so often; `stop` ends it and waits for a run under way. */
export interface Repeating {
  stop(): Promise<void>;
}

/**
 * Runs `fn` every `ms`, never two runs at once (a tick that finds one still running is skipped); a run that
 * throws is reported to `onError` and the next tick runs as usual. The timer does not keep the process alive.
 */
export const every = (ms: number, fn: () => Promise<unknown>, onError: (err: unknown) => void): Repeating => {
  let running: Promise<void> | null = null;
  const timer = setInterval(() => {
    if (running) return;
    running = fn()
      .then(
        () => undefined,
        (err: unknown) => onError(err),
      )
      .finally(() => (running = null));
  }, ms);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
};
