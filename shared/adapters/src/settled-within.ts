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
