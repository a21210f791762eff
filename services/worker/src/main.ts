import { createServer } from 'node:http';
import { once } from 'node:events';
import { loadConfig } from '@dtm-ts/config';
import { createInfra, runMain } from '@dtm-ts/runtime';
import { createLogger } from '@dtm-ts/telemetry';
import { startWorker } from './worker';

runMain('dtm-worker', async () => {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel, 'dtm-worker');
  const infra = await createInfra(config, logger, { manageRedis: true });
  const worker = await startWorker(infra);
  // A worker has no API; it serves its own metrics for Prometheus to scrape.
  const metricsServer = createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/metrics' || req.url === '/api/metrics')) infra.metrics.handle(req, res);
    else res.writeHead(404).end();
  });
  if (config.metricsPort > 0) {
    metricsServer.listen(config.metricsPort, config.host);
    await once(metricsServer, 'listening');
  }
  logger.info(
    { concurrency: config.workerConcurrency, metricsPort: config.metricsPort || undefined },
    'worker started',
  );
  return async () => {
    metricsServer.close();
    await worker.close();
    await infra.close();
  };
});
