import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { ConfigError, parseApiTokens, type Config } from '@dtm-ts/config';
import { SERVED_PROTOCOLS, type Infra } from '@dtm-ts/runtime';
import type { Logger } from '@dtm-ts/telemetry';
import { createApiApp } from './app';
import { Authorizer, isLoopbackHost } from './edge/auth';

export const VERSION = 'v1.19.0 (dtm-ts 0.1.0)';

export interface RunningApi {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/** The API's authorizer from API_TOKENS, API_TOKENS_FILE and API_TRUSTED_NETS; warns when an exposed API has none. */
export const authorizerOf = (config: Config, logger: Logger): Authorizer => {
  let fromFile: ReturnType<typeof parseApiTokens> = [];
  if (config.apiTokensFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(config.apiTokensFile, 'utf8');
    } catch (err) {
      throw new ConfigError(`API_TOKENS_FILE=${config.apiTokensFile}: ${(err as Error).message}`);
    }
    try {
      fromFile = parseApiTokens(text);
    } catch (err) {
      throw new ConfigError(`API_TOKENS_FILE=${config.apiTokensFile}: ${(err as Error).message}`);
    }
  }
  const tokens = [...(config.apiTokens ?? []), ...fromFile];
  const auth = new Authorizer({ tokens, trustedNets: config.apiTrustedNets ?? [] });
  if (auth.enabled) {
    logger.info(
      { tokens: tokens.length, trustedNets: (config.apiTrustedNets ?? []).length },
      'API authentication on: bearer tokens with scopes, or a trusted network',
    );
  } else if (!isLoopbackHost(config.host)) {
    logger.warn(
      { host: config.host, port: config.port },
      `the API listens on ${config.host} WITHOUT authentication: anyone who reaches port ${config.port} can submit, ` +
        'forceStop, reset retries and delete topics. Set API_TOKENS (or API_TOKENS_FILE) and API_TRUSTED_NETS, ' +
        'or HOST=127.0.0.1 (README, "Security")',
    );
  }
  return auth;
};

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
    now: () => infra.clock.now(),
    version: VERSION,
    logger,
    metrics: infra.metrics,
    maxBodyBytes: config.maxBodyBytes,
    auth: authorizerOf(config, logger),
  });
  const server = app.listen(port, config.host);
  await once(server, 'listening');
  server.keepAliveTimeout = 65_000;
  const addr = server.address() as AddressInfo;
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
