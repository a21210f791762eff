/**
 * npm run bench:grpc: N two-step sagas submitted over the TM's gRPC API (`dtmgimp.Dtm/Submit`, through the SDK's
 * SagaGrpc), against a local RM that answers at once. Prints sagas/s and p50/p99 (submit → last branch call), beside
 * the raw rate of the same gRPC client against the same RM's gRPC methods (two calls per "saga"), in the same run.
 *
 * Branches: BENCH_BRANCHES=grpc (the TM calls the RM's gRPC methods `host:port/busi.Busi/TransOut`), http (the TM
 * calls its HTTP routes), or auto (default): grpc when this TM can call gRPC branches, else http, and it says which.
 *
 * The TM runs as its own process, Redis too. Env: BENCH_SAGAS (default 20000), BENCH_CONCURRENCY (clients, each
 * with one saga in flight, default 256).
 */
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus } from 'node:os';
import {
  Client,
  credentials,
  Metadata,
  Server,
  ServerCredentials,
  type sendUnaryData,
  type ServerUnaryCall,
} from '@grpc/grpc-js';
import { closeGrpcChannels, DtmGrpcClient, SagaGrpc } from '@dtm-ts/client';
import { freePort, startRedis } from '@dtm-ts/testing';
import { cpuMicros } from './cpu';

const N = Number(process.env.BENCH_SAGAS ?? 20_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 256);
const BRANCHES = process.env.BENCH_BRANCHES ?? 'auto';
if (!['auto', 'grpc', 'http'].includes(BRANCHES)) throw new Error(`BENCH_BRANCHES must be auto, grpc or http`);

const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PAYLOAD = Buffer.from([0x08, 0x1e]); // a protobuf message { amount: 30 }

/** Runs `total` tasks with at most `width` in flight. */
const pool = async (total: number, width: number, task: (i: number) => Promise<void>): Promise<void> => {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, total) }, async () => {
      while (next < total) await task(next++);
    }),
  );
};

/** The RM, on gRPC (service busi.Busi, raw bytes) and HTTP: answers at once, notes when each saga's TransIn came. */
const startRm = async () => {
  const lastCall = new Map<string, number>();
  const waiting = new Map<string, () => void>();
  let calls = 0;
  const reached = (gid: string | null | undefined, method: string) => {
    calls++;
    if (gid && method === 'TransIn') {
      lastCall.set(gid, performance.now());
      waiting.get(gid)?.();
    }
  };
  const raw = (b: Buffer) => b;
  const methods = ['TransOut', 'TransOutRevert', 'TransIn', 'TransInRevert', 'Raw'];
  const grpc = new Server();
  grpc.addService(
    Object.fromEntries(
      methods.map((m) => [
        m,
        {
          path: `/busi.Busi/${m}`,
          requestStream: false,
          responseStream: false,
          requestSerialize: raw,
          requestDeserialize: raw,
          responseSerialize: raw,
          responseDeserialize: raw,
        },
      ]),
    ),
    Object.fromEntries(
      methods.map((m) => [
        m,
        (call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => {
          reached(call.metadata.get('dtm-gid')[0] as string | undefined, m);
          cb(null, Buffer.alloc(0));
        },
      ]),
    ),
  );
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpc.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const http = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://rm');
      reached(u.searchParams.get('gid'), u.pathname.slice(1));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"dtm_result":"SUCCESS"}');
    });
  });
  http.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const httpBase = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  return {
    lastCall,
    waiting,
    calls: () => calls,
    grpcTarget: `127.0.0.1:${grpcPort}`,
    url: (kind: 'grpc' | 'http', method: string) =>
      kind === 'grpc' ? `127.0.0.1:${grpcPort}/busi.Busi/${method}` : `${httpBase}/${method}`,
    close: async () => {
      http.close();
      await new Promise<void>((r) => grpc.tryShutdown(() => r()));
    },
  };
};

const main = async (): Promise<void> => {
  const rm = await startRm();

  // 1. Raw: a gRPC client straight at the RM, two unary calls per "saga".
  const rawClient = new Client(rm.grpcTarget, credentials.createInsecure());
  const rawCall = (gid: string) =>
    new Promise<void>((resolve, reject) => {
      const md = new Metadata();
      md.set('dtm-gid', gid);
      rawClient.makeUnaryRequest(
        '/busi.Busi/Raw',
        (b: Buffer) => b,
        (b: Buffer) => b,
        PAYLOAD,
        md,
        {},
        (err) => (err ? reject(err) : resolve()),
      );
    });
  const t0 = performance.now();
  await pool(N, CONCURRENCY, async (i) => {
    await rawCall(`raw${i}`);
    await rawCall(`raw${i}`);
  });
  const rawSecs = (performance.now() - t0) / 1000;
  rawClient.close();

  // 2. Through the TM (own process) with its own Redis; sagas submitted over gRPC.
  const redis = await startRedis({ appendonly: true, appendfsync: 'everysec' });
  const [httpPort, grpcPort] = [await freePort(), await freePort()];
  const tm = spawn(process.execPath, ['--import', 'tsx', 'services/tm/src/main.ts'], {
    env: {
      ...process.env,
      REDIS_URL: redis.url,
      PORT: String(httpPort),
      GRPC_PORT: String(grpcPort),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  // A failed run must not leave the TM behind.
  process.once('exit', () => tm.kill('SIGKILL'));
  const dtm = new DtmGrpcClient(`127.0.0.1:${grpcPort}`, { timeoutMs: 60_000 });
  // Wait on HTTP first: a gRPC channel that finds nobody listening backs off for ever longer before it retries.
  const startDeadline = Date.now() + 120_000;
  for (;;) {
    const up = await fetch(`http://127.0.0.1:${httpPort}/api/ping`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    if (Date.now() > startDeadline) throw new Error('TM did not start in 120 s');
    await sleep(200);
  }

  const finished = (gid: string, ms: number): Promise<boolean> => {
    if (rm.lastCall.has(gid)) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      rm.waiting.set(gid, () => {
        clearTimeout(timer);
        rm.waiting.delete(gid);
        resolve(true);
      });
    });
  };
  const submit = async (gid: string, kind: 'grpc' | 'http'): Promise<number> => {
    const saga = new SagaGrpc(dtm, gid)
      .add(rm.url(kind, 'TransOut'), rm.url(kind, 'TransOutRevert'), PAYLOAD)
      .add(rm.url(kind, 'TransIn'), rm.url(kind, 'TransInRevert'), PAYLOAD);
    const start = performance.now();
    await saga.submit();
    return start;
  };

  // gRPC branches when the TM calls them (a probe saga reaches the RM's gRPC method), else HTTP.
  let kind: 'grpc' | 'http' = BRANCHES === 'http' ? 'http' : 'grpc';
  if (BRANCHES === 'auto') {
    await submit('probe-grpc', 'grpc');
    if (!(await finished('probe-grpc', 5000))) kind = 'http';
  }

  // Warm up (JIT, connections), then measure: each of CONCURRENCY clients submits a saga, waits until its last
  // branch call reached the RM, then submits the next.
  const warm = Math.min(2000, Math.ceil(N / 10));
  await pool(warm, CONCURRENCY, async (i) => {
    await submit(`warm-${i}`, kind);
    if (!(await finished(`warm-${i}`, 60_000))) throw new Error(`warm-up saga ${i} did not finish`);
  });

  const tmBefore = cpuMicros(tm.pid!);
  const starts = new Map<string, number>();
  const runId = Date.now().toString(36);
  const t1 = performance.now();
  await pool(N, CONCURRENCY, async (i) => {
    const gid = `g${runId}-${i}`;
    starts.set(gid, await submit(gid, kind));
    if (!(await finished(gid, 60_000))) throw new Error(`saga ${gid} did not finish in 60 s`);
  });
  const lastEnd = Math.max(...[...starts.keys()].map((g) => rm.lastCall.get(g)!));
  const tmCpu = cpuMicros(tm.pid!) - tmBefore;
  const sagaSecs = (lastEnd - t1) / 1000;
  const lat = [...starts.entries()].map(([g, s]) => rm.lastCall.get(g)! - s).sort((a, b) => a - b);

  tm.kill('SIGINT');
  await new Promise((r) => tm.once('exit', r));
  await redis.stop();
  closeGrpcChannels();
  await rm.close();

  const sagaRate = N / sagaSecs;
  const rawRate = N / rawSecs;
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, node ${process.version}`);
  console.log(
    `sagas: ${N} two-step sagas submitted over gRPC (SagaGrpc), ${kind.toUpperCase()} branches` +
      `${BRANCHES === 'auto' && kind === 'http' ? ' (this TM does not call gRPC branches yet)' : ''}, ` +
      `${CONCURRENCY} clients with one saga in flight each, TM = one all-in-one process`,
  );
  console.log(
    `  TM        ${sagaRate.toFixed(0).padStart(7)} sagas/s   p50 ${pct(lat, 50).toFixed(1)} ms   p99 ${pct(lat, 99).toFixed(1)} ms  (submit → last branch call)`,
  );
  console.log(
    `  raw gRPC  ${rawRate.toFixed(0).padStart(7)} pairs/s   (same gRPC client stack, 2 unary calls to the same RM, no TM)`,
  );
  console.log(`  ratio     ${(sagaRate / rawRate).toFixed(3)} (TM sagas/s ÷ raw pairs/s)`);
  console.log(`  TM CPU    ${(tmCpu / N).toFixed(0).padStart(7)} µs per saga`);
  console.log(`  rm calls  ${rm.calls()}`);
};

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
