import { loadConfig } from '@dtm-ts/config';
import { createInfra } from '@dtm-ts/runtime';
import { createLogger } from '@dtm-ts/telemetry';
import { rebuildReadModel } from './rebuild';

/** `npm run read-model:rebuild`: replays the whole log into the read model, then exits. */
const main = async (): Promise<void> => {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel, 'dtm-rebuild');
  const infra = await createInfra(config, logger, { manageRedis: true });
  const started = Date.now();
  const n = await rebuildReadModel({
    log: infra.log,
    feed: infra.log,
    readModel: infra.readModel,
    requestTimeoutMs: config.requestTimeoutS * 1000,
    retentionMs: config.finishedRetentionS * 1000,
    policy: infra.policy,
  });
  logger.info({ appends: n, ms: Date.now() - started }, 'read model rebuilt from the log');
  await infra.close();
};

main().catch((err: unknown) => {
  process.stderr.write(`dtm-rebuild: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
