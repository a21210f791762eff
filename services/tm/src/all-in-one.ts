import type { ClosableBranchTransport } from '@dtm-ts/adapters';
import type { Config } from '@dtm-ts/config';
import { startApi, type RunningApi } from '@dtm-ts/api';
import { createInfra, type Infra } from '@dtm-ts/runtime';
import type { Logger } from '@dtm-ts/telemetry';
import { startWorker, type RunningWorker } from '@dtm-ts/worker';

export interface RunningTm {
  readonly url: string;
  readonly infra: Infra;
  readonly api: RunningApi;
  readonly worker: RunningWorker;
  close(): Promise<void>;
}

/** API and worker in one process, sharing one set of connections. */
export const startTm = async (
  config: Config,
  logger: Logger,
  opts: { manageRedis?: boolean; redisSocket?: string; port?: number; transport?: ClosableBranchTransport } = {},
): Promise<RunningTm> => {
  const infra = await createInfra(config, logger, {
    manageRedis: opts.manageRedis,
    redisSocket: opts.redisSocket,
    transport: opts.transport,
  });
  const worker = await startWorker(infra);
  const api = await startApi(infra, opts.port);
  return {
    url: api.url,
    infra,
    api,
    worker,
    async close() {
      await api.close();
      await worker.close();
      await infra.close();
    },
  };
};
