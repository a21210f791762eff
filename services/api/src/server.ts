import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listAlerts, SERVED_PROTOCOLS, type Infra } from '@dtm-ts/runtime';
import { TopicDirectory } from './console/topic-directory';
import { createApiApp } from './app';
import { authorizerOf } from './edge/auth';

export const VERSION = 'v1.19.0 (dtm-ts 0.1.0)';

export interface RunningApi {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/** Serves the API on the config's HOST:PORT (port 0: any free port). */
export const startApi = async (infra: Infra, port = infra.config.port): Promise<RunningApi> => {
  const { config, logger } = infra;
  const app = createApiApp({
    driver: infra.driver,
    log: infra.log,
    topics: infra.topics,
    readModel: infra.readModel,
    limits: { maxBranches: config.maxBranches, kafka: config.kafkaBrokers !== undefined, protocols: SERVED_PROTOCOLS },
    requestTimeoutS: config.requestTimeoutS,
    timeoutToFailS: config.timeoutToFailS,
    policy: infra.policy,
    outbound: infra.outbound,
    now: () => infra.clock.now(),
    version: VERSION,
    logger,
    metrics: infra.metrics,
    maxBodyBytes: config.maxBodyBytes,
    auth: authorizerOf(config, logger),
    topicIndex: new TopicDirectory(infra.redis, config.prefix, infra.topics),
    console: {
      readModel: infra.readModel,
      log: infra.log,
      alerts: (limit) => listAlerts(infra.redis, config.prefix, limit),
      unfinishedCount: () => infra.readModel.unfinishedCount(),
      settings: {
        traceUrlTemplate: config.traceUrlTemplate,
        alertRetryLimit: config.alertRetryLimit,
        alertWebhook: config.alertWebhook !== undefined,
      },
      now: () => infra.clock.now(),
    },
  });
  const server = app.listen(port, config.host);
  await once(server, 'listening');
  server.keepAliveTimeout = 65_000;
  const addr = server.address() as AddressInfo;
  // Port 0 (tests): the policy learns the port the API got.
  infra.outbound.addOwnPort(addr.port);
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  return {
    url: `http://${host}:${addr.port}`,
    server,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
};
