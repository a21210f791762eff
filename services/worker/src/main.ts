import { loadConfig } from '@dtm-ts/config';
import { createInfra, runMain } from '@dtm-ts/runtime';
import { createLogger } from '@dtm-ts/telemetry';
import { startWorker } from './worker';

runMain('dtm-worker', async () => {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel, 'dtm-worker');
  const infra = await createInfra(config, logger, { manageRedis: true });
  const worker = await startWorker(infra);
  logger.info({ concurrency: config.workerConcurrency }, 'worker started');
  return async () => {
    await worker.close();
    await infra.close();
  };
});
