/**
 * npm run bench:soak: does growth stay bounded?
 *
 * 1. Memory. Steady saga load (SOAK_RATE sagas/s, default 200, for SOAK_SECONDS, default 30) against a TM in
 *    its own process with a short retention (SOAK_RETENTION seconds, default 5), so finished transactions
 *    leave Redis for the archive while the load runs. Prints Redis `used_memory` and the key count at the
 *    start, every SOAK_SAMPLE seconds (default 5), and after the load once the retention has passed.
 * 2. Pass time. A transaction whose stream holds SOAK_RETRY_EVENTS (default 100,000) retry events, seeded
 *    through the log port, against a fresh one: the median time of a pass (read state, call the branch, which
 *    answers ONGOING, append the retry), beside the cost of folding the whole stream (a pass without snapshots).
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { startTmProcess, twoStepSaga } from './tm-process';
import { fold, type TxEvent } from '@dtm-ts/domain';
import { RedisEventLog } from '@dtm-ts/adapters';
import { Driver } from '@dtm-ts/engine';
import { NO_STREAM } from '@dtm-ts/ports';
import { freePort, preparedSaga, startRedis } from '@dtm-ts/testing';

const RATE = Number(process.env.SOAK_RATE ?? 200);
const SECONDS = Number(process.env.SOAK_SECONDS ?? 30);
const RETENTION = Number(process.env.SOAK_RETENTION ?? 5);
const SAMPLE = Number(process.env.SOAK_SAMPLE ?? 5);
const RETRY_EVENTS = Number(process.env.SOAK_RETRY_EVENTS ?? 100_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const kb = (bytes: number): string => `${(bytes / 1024).toFixed(0)} KiB`;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

const usedMemory = async (redis: Redis): Promise<number> => {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? NaN);
};

/** Files under the archive directory (two fan-out levels). */
const archivedFiles = (dir: string): number => {
  let n = 0;
  try {
    for (const a of readdirSync(dir))
      for (const b of readdirSync(join(dir, a))) n += readdirSync(join(dir, a, b)).length;
  } catch {
    // not created yet
  }
  return n;
};

const memorySoak = async (): Promise<void> => {
  const rm = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"dtm_result":"SUCCESS"}'));
  });
  await new Promise<void>((r) => rm.listen(0, '127.0.0.1', r));
  const rmUrl = `http://127.0.0.1:${(rm.address() as AddressInfo).port}`;
  const server = await startRedis({ appendonly: true, appendfsync: 'everysec' });
  const redis = new Redis(server.url);
  const dataDir = mkdtempSync(join(tmpdir(), 'dtm-soak-'));
  const archiveDir = join(dataDir, 'archive');
  const port = await freePort();
  const client = new Agent({ connections: 64 });
  const { tm, api } = await startTmProcess(
    port,
    { REDIS_URL: server.url, FINISHED_RETENTION: String(RETENTION), DATA_DIR: dataDir, ARCHIVE_DIR: archiveDir },
    client,
  );

  const rows: { t: number; used: number; keys: number; submitted: number; archived: number }[] = [];
  let submitted = 0;
  let failed = 0;
  const t0 = Date.now();
  const sample = async (): Promise<void> => {
    const row = {
      t: (Date.now() - t0) / 1000,
      used: await usedMemory(redis),
      keys: await redis.dbsize(),
      submitted,
      archived: archivedFiles(archiveDir),
    };
    rows.push(row);
    console.log(
      `  ${row.t.toFixed(0).padStart(4)} s  used_memory ${kb(row.used).padStart(10)}  keys ${String(row.keys).padStart(6)}  sagas submitted ${String(row.submitted).padStart(6)}  archived ${String(row.archived).padStart(6)}`,
    );
  };
  console.log(`memory: ${RATE} sagas/s for ${SECONDS} s, FINISHED_RETENTION=${RETENTION}`);
  await sample();

  const submit = async (gid: string): Promise<void> => {
    const body = twoStepSaga(gid, rmUrl);
    const r = await request(`${api}/submit`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
      dispatcher: client,
    });
    await r.body.text();
    if (r.statusCode === 200) submitted++;
    else failed++;
  };
  // Open loop at a fixed rate, in 100 ms ticks.
  const inflight = new Set<Promise<void>>();
  const end = t0 + SECONDS * 1000;
  let nextSample = t0 + SAMPLE * 1000;
  for (let tick = 0; Date.now() < end; tick++) {
    const due = Math.floor(((Date.now() - t0) / 1000) * RATE) - (submitted + failed + inflight.size);
    for (let i = 0; i < due && inflight.size < 512; i++) {
      const p = submit(`soak-${t0}-${tick}-${i}`).finally(() => inflight.delete(p));
      inflight.add(p);
    }
    if (Date.now() >= nextSample) {
      nextSample += SAMPLE * 1000;
      await sample();
    }
    await sleep(100);
  }
  await Promise.all(inflight);
  // After the load: every saga ends, its retention passes and the worker's retention run archives it; then
  // the 30 s markers that refuse a new stream under an archived gid lapse.
  console.log('  load stopped; waiting until every saga is archived, then for the archived markers to lapse');
  const deadline = Date.now() + 180_000;
  while (archivedFiles(archiveDir) < submitted && Date.now() < deadline) {
    await sleep(SAMPLE * 1000);
    await sample();
  }
  const lapse = Date.now() + 32_000;
  while (Date.now() < lapse) {
    await sleep(Math.min(SAMPLE * 1000, Math.max(0, lapse - Date.now())));
    await sample();
  }

  tm.kill('SIGINT');
  await new Promise((r) => tm.once('exit', r));
  redis.disconnect();
  await server.stop();
  rm.close();
  await client.close();
  rmSync(dataDir, { recursive: true, force: true });

  const first = rows[0]!;
  const loadRows = rows.filter((r) => r.t <= SECONDS + SAMPLE);
  const steady = loadRows.slice(Math.ceil((RETENTION * 2) / SAMPLE) + 1);
  const last = rows.at(-1)!;
  const steadyUsed = steady.map((r) => r.used);
  const steadyText = steadyUsed.length
    ? `steady load min/max ${kb(Math.min(...steadyUsed))}/${kb(Math.max(...steadyUsed))}`
    : 'load too short for a steady phase';
  console.log(`  start ${kb(first.used)}, ${steadyText}, end ${kb(last.used)}`);
  console.log(
    `  ${submitted} sagas (${failed} refused), ${last.archived} archived; end − start = ${kb(last.used - first.used)}: fixed structures (BullMQ's event stream, capped at 10,000 entries; consumer groups; scripts), not per saga (before: ~2,950 bytes per finished saga, for ever: ${kb(submitted * 2950)} here)`,
  );
};

const at = (ms: number): string => new Date(ms).toISOString();

/** A one-step saga, submitted, whose action answered ONGOING `retries` times; the last retry is due now. */
const seed = async (log: RedisEventLog, gid: string, retries: number, now: number): Promise<void> => {
  const head: TxEvent[] = [
    preparedSaga({ gid, at: at(now - retries * 10_000), payload: '{"amount":30}' }),
    { type: 'TransactionSubmitted', data: { at: at(now - retries * 10_000) } },
  ];
  let version = await log.append(gid, head, NO_STREAM);
  for (let done = 0; done < retries;) {
    const n = Math.min(5000, retries - done);
    const events = Array.from({ length: n }, (_, k): TxEvent => {
      const t = now - (retries - done - k) * 10_000;
      return {
        type: 'BranchRetryScheduled',
        data: {
          branchId: '01',
          op: 'action',
          outcome: 'ongoing',
          detail: 'ONGOING',
          at: at(t),
          retryAt: at(t + 10_000),
        },
      };
    });
    version = await log.append(gid, events, version);
    done += n;
  }
};

const passTime = async (): Promise<void> => {
  const server = await startRedis();
  const redis = new Redis(server.url);
  const log = new RedisEventLog(redis, { prefix: 'soak', partitions: 4 });
  // Each pass runs an hour after the previous one, so the branch is due again every time.
  let offset = 0;
  const driver = new Driver({
    log,
    transport: { call: async () => ({ kind: 'ongoing', detail: 'ONGOING' }) },
    scheduler: { schedule: async () => undefined },
    clock: { now: () => Date.now() + offset },
    policy: { retryIntervalS: 10, timeoutToFailS: 35, backoffCapS: 3600 },
    requestTimeoutS: 3,
  });
  const now = Date.now();
  const t0 = performance.now();
  await seed(log, 'long', RETRY_EVENTS, now);
  const seedMs = performance.now() - t0;
  await seed(log, 'fresh', 1, now);

  const pass = async (gid: string): Promise<number> => {
    offset += 3_600_000;
    const s = performance.now();
    const r = await driver.runPass(gid, { trace: '' });
    if (r.state.status !== 'submitted') throw new Error(`unexpected ${r.state.status}`);
    return performance.now() - s;
  };
  const firstLong = performance.now();
  await driver.runPass('long', { trace: '' }); // the first read folds everything once and stores a snapshot
  const firstMs = performance.now() - firstLong;
  // Interleaved, so that whatever else the machine does weighs on both alike.
  const long: number[] = [];
  const fresh: number[] = [];
  for (let i = 0; i < 40; i++) {
    long.push(await pass('long'));
    fresh.push(await pass('fresh'));
  }
  const w0 = performance.now();
  const whole = await log.read('long');
  fold(whole.events);
  const wholeMs = performance.now() - w0;

  console.log(
    `pass time: a transaction with ${RETRY_EVENTS} retry events (seeded in ${(seedMs / 1000).toFixed(1)} s) vs a fresh one`,
  );
  console.log(`  fresh (3 events)          median pass ${median(fresh).toFixed(2)} ms`);
  console.log(
    `  ${String(whole.events.length).padEnd(6)} events             median pass ${median(long).toFixed(2)} ms   (first pass, which stores the snapshot: ${firstMs.toFixed(0)} ms)`,
  );
  console.log(`  whole-stream read + fold  ${wholeMs.toFixed(0)} ms   (what each pass cost without snapshots)`);
  redis.disconnect();
  await server.stop();
};

const main = async (): Promise<void> => {
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, node ${process.version}`);
  await memorySoak();
  await passTime();
};

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
