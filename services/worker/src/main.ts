import { loadConfig } from '@dtm-ts/config';
import { createInfra, runMain } from '@dtm-ts/runtime';
import { createLogger } from '@dtm-ts/telemetry';
import { startMetricsServer } from './metrics-server';
import { startWorker } from './worker';

runMain('dtm-worker', async () => {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel, 'dtm-worker');
  const infra = await createInfra(config, logger, { manageRedis: true });
  const worker = await startWorker(infra);
  // A worker has no API; it serves its own metrics for Prometheus to scrape.
  const metrics = await startMetricsServer(
    { port: config.metricsPort, host: config.host, warn: (fields, msg) => logger.warn(fields, msg) },
    (req, res) => infra.metrics.handle(req, res),
  );
  logger.info({ concurrency: config.workerConcurrency, metricsPort: metrics?.port }, 'worker started');
  return async () => {
    await metrics?.close();
    await worker.close();
    await infra.close();
  };
});
