import { pino } from 'pino';
import { ConfigError, loadConfig } from '@dtm-ts/config';
import { createInfra } from '@dtm-ts/runtime';
import { REPLAY_USAGE, UsageError, parseReplayArgs, replay } from './replay';
import { progressLine } from './progress';

/** `npm run replay -- --gid <gid>` or `-- --all [--since] [--until]`: prints histories from the log, then exits. */
const main = async (): Promise<number> => {
  const args = parseReplayArgs(process.argv.slice(2));
  const config = loadConfig(process.env);
  // Logs go to stderr: stdout is the replay.
  const logger = pino({ level: config.logLevel, name: 'dtm-replay', base: { service: 'dtm-replay' } }, process.stderr);
  const infra = await createInfra(config, logger, { manageRedis: true });
  try {
    const progress = progressLine(process.stderr, 'replay', 'transactions');
    const n = await replay(
      { log: infra.log, feed: infra.log },
      args,
      (text) => process.stdout.write(text),
      500,
      (k) => progress.add(k),
    );
    progress.done();
    if (args.all) process.stderr.write(`dtm-replay: ${n} transaction(s)\n`);
    return 0;
  } finally {
    await infra.close();
  }
};

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) process.stderr.write(`dtm-replay: ${err.message}\n\n${REPLAY_USAGE}\n`);
    else if (err instanceof ConfigError) process.stderr.write(`dtm-replay: ${err.message}\n`);
    else process.stderr.write(`dtm-replay: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(err instanceof UsageError || err instanceof ConfigError ? 2 : 1);
  },
);
