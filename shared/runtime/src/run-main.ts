import { ConfigError } from '@dtm-ts/config';

/**
 * Runs a service: starts it, and on SIGINT/SIGTERM stops it cleanly (so in-flight passes finish
 * or are left for another worker). Configuration errors print plainly and exit 2.
 */
export const runMain = (name: string, start: () => Promise<() => Promise<void>>): void => {
  start()
    .then((stop) => {
      let stopping = false;
      const shutdown = (signal: string) => {
        if (stopping) return;
        stopping = true;
        process.stderr.write(`${name}: ${signal}, shutting down\n`);
        const force = setTimeout(() => process.exit(1), 15_000);
        force.unref();
        stop()
          .then(() => process.exit(0))
          .catch((err: unknown) => {
            process.stderr.write(`${name}: shutdown failed: ${String(err)}\n`);
            process.exit(1);
          });
      };
      process.on('SIGINT', () => shutdown('SIGINT'));
      process.on('SIGTERM', () => shutdown('SIGTERM'));
    })
    .catch((err: unknown) => {
      if (err instanceof ConfigError) process.stderr.write(`${name}: ${err.message}\n`);
      else
        process.stderr.write(
          `${name}: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
        );
      process.exit(2);
    });
};
