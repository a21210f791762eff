import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { listAlerts, SERVED_PROTOCOLS, type Infra } from '@dtm-ts/runtime';
import { TopicDirectory } from './console/topic-directory';
import { createApiApp, type ApiDeps } from './app';
import { authorizerOf } from './edge/auth';
import { DtmService } from './http/dtm-service';
import { startGrpcApi, type RunningGrpcApi } from './grpc/grpc-api';

export const VERSION = 'v1.19.0 (dtm-ts 0.1.0)';

export interface RunningApi {
  readonly url: string;
  readonly server: Server;
  /** The gRPC API (`dtmgimp.Dtm`), when GRPC_PORT is not 0. */
  readonly grpc: RunningGrpcApi | undefined;
  close(): Promise<void>;
}

/**
 * Serves the API on the config's HOST:PORT (port 0: any free port), and the gRPC API on
 * HOST:GRPC_PORT unless `grpcPort` is 0. Both call one `DtmService`.
 */
export const startApi = async (
  infra: Infra,
  port = infra.config.port,
  grpcPort = infra.config.grpcPort,
): Promise<RunningApi> => {
  const { config, logger } = infra;
  const deps: ApiDeps = {
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
  };
  const svc = new DtmService(deps);
  const app = createApiApp(deps, svc);
  const grpc =
    grpcPort === 0
      ? undefined
      : await startGrpcApi(
          {
            svc,
            logger,
            metrics: infra.metrics,
            maxMessageBytes: config.maxBodyBytes,
            // The same access check as HTTP (edge/auth.ts): metadata `authorization`, the peer's address.
            authorize: deps.auth?.enabled ? (header, peer, scope) => deps.auth!.check(header, peer, scope) : undefined,
          },
          config.host,
          grpcPort,
        );
  const server = app.listen(port, config.host);
  await once(server, 'listening').catch(async (err: unknown) => {
    await grpc?.close();
    throw err;
  });
  server.keepAliveTimeout = 65_000;
  const addr = server.address() as AddressInfo;
  // Port 0 (tests): the policy learns the port the API got.
  infra.outbound.addOwnPort(addr.port);
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  return {
    url: `http://${host}:${addr.port}`,
    server,
    grpc,
    async close() {
      server.closeAllConnections();
      await Promise.all([new Promise<void>((resolve) => server.close(() => resolve())), grpc?.close()]);
    },
  };
};
