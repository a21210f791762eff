import { settledWithin } from '@dtm-ts/adapters';

/** A job run every so often; `stop` ends it and waits for a run under way. */
export interface Repeating {
  stop(): Promise<void>;
}

/**
 * Runs `fn` every `ms`, never two runs at once (a tick that finds one still running is skipped); a run that
 * throws is reported to `onError` and the next tick runs as usual. The timer does not keep the process alive.
 * With `maxRunMs`, a run still going after that long is reported and no longer waited for: a command stuck on a
 * connection that never answers (a Redis Cluster node gone) must not stop every later run.
 */
export const every = (
  ms: number,
  fn: () => Promise<unknown>,
  onError: (err: unknown) => void,
  opts: { maxRunMs?: number } = {},
): Repeating => {
  let running: Promise<void> | null = null;
  let startedAt = 0;
  const timer = setInterval(() => {
    if (running) {
      if (opts.maxRunMs === undefined || Date.now() - startedAt < opts.maxRunMs) return;
      onError(new Error(`a run still going after ${opts.maxRunMs} ms; the next ones start without it`));
    }
    startedAt = Date.now();
    const run: Promise<void> = fn()
      .then(
        () => undefined,
        (err: unknown) => onError(err),
      )
      .finally(() => {
        if (running === run) running = null;
      });
    running = run;
  }, ms);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      if (running) await (opts.maxRunMs === undefined ? running : settledWithin(running, opts.maxRunMs));
    },
  };
};
