import { loadConfig } from '@dtm-ts/config';
import { runMain } from '@dtm-ts/runtime';
import { createLogger } from '@dtm-ts/telemetry';
import { startTm } from './all-in-one';

runMain('dtm-ts', async () => {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel, 'dtm-ts');
  const tm = await startTm(config, logger, { manageRedis: true });
  logger.info(
    {
      api: `${tm.url}/api/dtmsvr`,
      grpc: tm.api.grpc?.target ?? 'off',
      redis:
        config.redisUrl ??
        (config.redisCluster
          ? `cluster ${config.redisCluster.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`
          : `managed under ${config.dataDir}/redis`),
    },
    'dtm-ts is up',
  );
  return () => tm.close();
});
