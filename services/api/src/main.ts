import { loadConfig } from '@dtm-ts/config';
import { createInfra, runMain } from '@dtm-ts/runtime';
import { createLogger } from '@dtm-ts/telemetry';
import { startApi } from './server';

runMain('dtm-api', async () => {
  // The API role hands every pass to the workers, so that they scale out.
  const config = loadConfig(process.env, { inlinePasses: 0 });
  const logger = createLogger(config.logLevel, 'dtm-api');
  const infra = await createInfra(config, logger, { manageRedis: true });
  const api = await startApi(infra);
  logger.info({ url: `${api.url}/api/dtmsvr`, grpc: api.grpc?.target ?? 'off' }, 'api listening');
  return async () => {
    await api.close();
    await infra.close();
  };
});
