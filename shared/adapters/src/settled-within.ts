/**
 * Whether `p` settled (resolved or rejected) within `ms`. Shutdown steps race their deadline with it: a close that
 * waits on a connection stuck reconnecting must not hold the process for ever.
 */
export const settledWithin = (p: Promise<unknown>, ms: number): Promise<boolean> =>
  new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    const settled = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    p.then(settled, settled);
  });

/**
 * Closes something within `ms`: `close()`, and if it has not settled by then, `cut()` (disconnect its connections,
 * as a crash would). Resolves to whether the close was clean; never waits longer than `ms`.
 */
export const closeOrCut = async (close: () => Promise<unknown>, cut: () => void, ms: number): Promise<boolean> => {
  if (await settledWithin(close(), ms)) return true;
  cut();
  return false;
};
