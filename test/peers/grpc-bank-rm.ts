import { fileURLToPath } from 'node:url';
import {
  loadPackageDefinition,
  Server,
  ServerCredentials,
  type GrpcObject,
  type ServiceClientConstructor,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type pg from 'pg';
import {
  BranchBarrier,
  DtmFailure,
  grpcBranchInfo,
  grpcQueryPreparedHandler,
  grpcRmHandler,
  type PgBarrierStore,
} from '@dtm-ts/client';

/** DTM's busi.ReqGrpc, as proto-loader hands it over (keepCase, longs as numbers). */
export interface ReqGrpc {
  Amount: number;
  TransOutResult: string;
  TransInResult: string;
}

const PROTO = fileURLToPath(new URL('./grpc-busi.proto', import.meta.url));

/** The `busi` package of grpc-busi.proto, loaded with proto-loader as an application would. */
export const loadBusi = (): { Busi: ServiceClientConstructor } => {
  const def = loadSync(PROTO, { keepCase: true, longs: Number, defaults: true });
  const busi = loadPackageDefinition(def).busi as GrpcObject;
  return { Busi: busi.Busi as ServiceClientConstructor };
};

/** Protobuf bytes of `busi.ReqGrpc{Amount, TransInResult}`: what an AP puts in bin_payloads. */
export const reqGrpcBytes = (amount: number, transInResult = ''): Buffer => {
  const varint: number[] = [];
  for (let n = amount; ; n = Math.floor(n / 128)) {
    if (n < 128) {
      varint.push(n);
      break;
    }
    varint.push((n % 128) | 0x80);
  }
  const result = Buffer.from(transInResult, 'utf8');
  const field3 = result.length ? [0x1a, result.length, ...result] : [];
  return Buffer.from([0x08, ...varint, ...field3]);
};

export interface GrpcBankRm {
  readonly address: string;
  /** DTM's branch url of a busi method: `127.0.0.1:<port>/busi.Busi/<method>`. */
  url(method: string): string;
  /** How many times the business of each method ran (past the barrier). */
  readonly executed: Map<string, number>;
  close(): Promise<void>;
}

/**
 * A bank written with the client SDK's RM side: accounts in PostgreSQL, each method behind the barrier fed from
 * the call's gRPC metadata. TransOut takes from account 1, TransIn gives to account 2 (refusing when the request
 * says `TransInResult: "FAILURE"`), the reverts undo them; QueryPrepared is the barrier's msg check-back.
 */
export const startGrpcBankRm = async (pool: pg.Pool, store: PgBarrierStore): Promise<GrpcBankRm> => {
  const executed = new Map<string, number>();
  const adjust = (method: string, account: number, sign: 1 | -1) =>
    grpcRmHandler<ReqGrpc, object>(async (call) => {
      grpcBranchInfo(call.metadata); // INVALID_ARGUMENT unless the TM's metadata is there
      await BranchBarrier.fromGrpcMetadata(call.metadata).call(store, async (tx: pg.PoolClient) => {
        if (method === 'TransIn' && call.request.TransInResult === 'FAILURE') throw new DtmFailure('refused by bank');
        await tx.query('UPDATE account SET balance = balance + $1 WHERE id = $2', [
          sign * call.request.Amount,
          account,
        ]);
        executed.set(method, (executed.get(method) ?? 0) + 1);
      });
    });
  const server = new Server();
  server.addService(loadBusi().Busi.service, {
    TransOut: adjust('TransOut', 1, -1),
    TransOutRevert: adjust('TransOutRevert', 1, 1),
    TransIn: adjust('TransIn', 2, 1),
    TransInRevert: adjust('TransInRevert', 2, -1),
    QueryPrepared: grpcQueryPreparedHandler(store),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const address = `127.0.0.1:${port}`;
  return {
    address,
    url: (method) => `${address}/busi.Busi/${method}`,
    executed,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
};
