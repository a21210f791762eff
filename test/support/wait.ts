import { expect } from 'vitest';

export interface WaitOptions {
  /** Give up after this many ms (generous: the machine may be busy). Default 20 s. */
  readonly timeout?: number;
  /** Poll every this many ms. Default 50. */
  readonly interval?: number;
}

/**
 * Sleeps. Only for pacing what a test does (a load, a scripted race, a slow RM): never to wait for
 * the system to reach a state, which is `waitFor`'s job.
 */
export const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `check` until it returns a value other than `false`, `null` or `undefined`, and returns that
 * value. A `check` that throws counts as not yet (so it may hold `expect`s). Once `timeout` ms have
 * passed, fails the test with `what` (a string, or a function for a message built at that moment) and
 * the last error `check` threw.
 */
export const waitFor = async <T>(
  check: () => T | Promise<T>,
  what: string | (() => string),
  { timeout = 20_000, interval = 50 }: WaitOptions = {},
): Promise<Exclude<T, false | null | undefined>> => {
  const deadline = Date.now() + timeout;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== false && value !== null && value !== undefined)
        return value as Exclude<T, false | null | undefined>;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const label = typeof what === 'string' ? what : what();
      const cause =
        lastError instanceof Error ? `: ${lastError.message}` : lastError ? `: ${JSON.stringify(lastError)}` : '';
      expect.fail(`${label}: not after ${timeout} ms${cause}`);
    }
    await pause(interval);
  }
};
