import { afterAll, beforeAll } from 'vitest';
import { credentials, loadPackageDefinition, Metadata, type Client, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { DTMGIMP_PROTO } from '@dtm-ts/api';
import type { Config } from '@dtm-ts/config';
import { freePort, startRedis, type RedisProcess } from '@dtm-ts/testing';
import type { RunningTm } from '@dtm-ts/tm';
import { startBranchPeer, type BranchPeer } from '../peers/http-branch-peer';
import { dtmClient, startTestTm, type DtmClient } from './tm-harness';

type Unary = (req: object, md: Metadata, cb: (err: ServiceError | null, res?: Record<string, unknown>) => void) => void;
/** A `dtmgimp.Dtm` client generated at run time from the repo's .proto (DTM's field names and numbers). */
export type DtmStub = Client & Record<string, Unary>;

/** A call's outcome: the error (null on OK) and the reply. */
export interface GrpcAnswer {
  readonly err: ServiceError | null;
  readonly res: Record<string, unknown> | undefined;
}

export const grpcCall = (c: DtmStub, method: string, req: object, md = new Metadata()): Promise<GrpcAnswer> =>
  new Promise((resolve) => c[method]!.call(c, req, md, (err, res) => resolve({ err, res })));

export interface GrpcTmFixture {
  readonly redis: RedisProcess;
  readonly tm: RunningTm;
  readonly peer: BranchPeer;
  readonly dtm: DtmClient;
  /** The TM's gRPC target, `127.0.0.1:<port>`. */
  readonly target: string;
  readonly stub: DtmStub;
}

/** Starts a TM with its gRPC API on a free port (retrying when another process took the port first). */
const startGrpcTm = async (redisUrl: string, overrides: Partial<Config>): Promise<RunningTm> => {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startTestTm(redisUrl, { ...overrides, grpcPort: await freePort() });
    } catch (err) {
      if (attempt >= 3 || !/EADDRINUSE|No address added/i.test(String(err))) throw err;
    }
  }
};

/** Redis, a TM serving gRPC, an HTTP RM peer and a generated gRPC client, once per file. */
export const useGrpcTmFixture = (overrides: Partial<Config> = {}): GrpcTmFixture => {
  const f = {} as { -readonly [K in keyof GrpcTmFixture]: GrpcTmFixture[K] };
  beforeAll(async () => {
    f.redis = await startRedis();
    f.tm = await startGrpcTm(f.redis.url, overrides);
    f.peer = await startBranchPeer();
    f.dtm = dtmClient(f.tm.url);
    f.target = f.tm.api.grpc!.target;
    const pkg = loadPackageDefinition(
      loadSync(DTMGIMP_PROTO, { keepCase: true, longs: Number, defaults: true }),
    ) as unknown as {
      dtmgimp: { Dtm: new (target: string, creds: ReturnType<typeof credentials.createInsecure>) => DtmStub };
    };
    f.stub = new pkg.dtmgimp.Dtm(f.target, credentials.createInsecure());
  });
  afterAll(async () => {
    f.stub?.close();
    await f.tm?.close();
    await f.peer?.close();
    await f.redis?.stop();
  });
  return f;
};
