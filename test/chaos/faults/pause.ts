/** Pids stopped by pauseFor right now: the exit hook continues them, so no test leaves a frozen process behind. */
const stopped = new Set<number>();
let exitHookInstalled = false;

const cont = (pid: number): void => {
  stopped.delete(pid);
  try {
    process.kill(pid, 'SIGCONT');
  } catch (err) {
    // Gone while stopped (SIGKILLed meanwhile): nothing to continue.
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
};

const installExitHook = (): void => {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const contAll = (): void => {
    for (const pid of [...stopped]) cont(pid);
  };
  process.on('exit', contAll);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => {
      contAll();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
};

/**
 * Freezes process `pid` for `ms` (SIGSTOP, wait, SIGCONT), as a long GC pause or a stalled VM would: its timers,
 * sockets and lease renewals all stop, then it carries on where it was, unaware. SIGCONT is sent however the wait
 * ends, and by an exit hook if the test process dies meanwhile. `pid` must be the process doing the work (a worker
 * started as `node --import tsx …`, not an npm or shell wrapper, which would freeze alone).
 */
export const pauseFor = async (pid: number, ms: number): Promise<void> => {
  installExitHook();
  process.kill(pid, 'SIGSTOP');
  stopped.add(pid);
  try {
    await new Promise<void>((resolve) => setTimeout(resolve, ms));
  } finally {
    cont(pid);
  }
};
