import { EsdbFakeServer, type EsdbFake, type EsdbFakeOptions } from './server';

export type { EsdbFake, EsdbFakeOptions } from './server';
export type { LogPosition, StoredEvent } from './store';

/**
 * Starts an in-process server speaking EventStoreDB's gRPC protocol well enough for `@eventstore/db-client`
 * (insecure, single node): appends (Append and BatchAppend) with expected revisions, reads of streams and
 * `$all`, catch-up subscriptions with filters, checkpoints and caught-up. Data lives in memory until `stop`.
 */
export const startEsdbFake = async (options: EsdbFakeOptions = {}): Promise<EsdbFake> => {
  const server = new EsdbFakeServer(options);
  const port = await server.listen();
  return {
    url: `esdb://127.0.0.1:${port}?tls=false`,
    port,
    store: server.store,
    stop: () => server.stop(),
  };
};
