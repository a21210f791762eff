import { randomUUID } from 'node:crypto';
import { loadConfig } from '@dtm-ts/config';
import { createLogger } from '@dtm-ts/telemetry';
import { startRedis } from '@dtm-ts/testing';
import { startTm } from '@dtm-ts/tm';
import { startBranchPeer } from '../peers/http-branch-peer';
import { runEdgeFuzz } from '../support/edge-fuzz';

/**
 * `npm run fuzz`: the edge fuzz for long runs. FUZZ_RUNS cases (default 5000) from FUZZ_SEED (default:
 * random, printed so a run can be repeated) against an in-process TM on its own redis-server; prints
 * cases, 5xx count, writes on refusal and stranded transactions; exits 1 on any finding.
 */
const runs = Number(process.env.FUZZ_RUNS ?? 5000);
const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));

const redis = await startRedis();
const config = loadConfig(
  {},
  {
    redisUrl: redis.url,
    port: 0,
    // Not the shared default gRPC port: another TM on this machine may hold it.
    grpcPort: 0,
    host: '127.0.0.1',
    prefix: `fz${randomUUID().slice(0, 8)}`,
    logLevel: 'error',
    retryIntervalS: 1,
    backoffCapS: 8,
    sweepIntervalMs: 500,
    sweepGraceMs: 2000,
  },
);
const tm = await startTm(config, createLogger(config.logLevel, 'fuzz-tm'));
const peer = await startBranchPeer();
const t0 = performance.now();
try {
  console.log(`edge fuzz: ${runs} cases, FUZZ_SEED=${seed}`);
  const report = await runEdgeFuzz({
    tm,
    peer,
    runs,
    seed,
    endDeadlineMs: 60_000,
    onProgress: (n) => {
      if (process.stdout.isTTY && n % 100 === 0) process.stdout.write(`\r${n}/${runs} cases`);
    },
  });
  if (process.stdout.isTTY) process.stdout.write('\n');
  const s = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(
    `cases ${report.cases} (accepted ${report.accepted}, refused ${report.refused}) in ${s} s\n` +
      `5xx ${report.serverErrors.length}\n` +
      `written on refusal ${report.writtenOnRefusal.length}\n` +
      `stranded ${report.stranded.length} of ${report.mustEnd} accepted sagas/messages to the test RM`,
  );
  for (const e of report.serverErrors.slice(0, 10))
    console.log(`  5xx ${e.status} ${e.case.label} ${e.case.path}: ${e.body}`);
  for (const e of report.writtenOnRefusal.slice(0, 10))
    console.log(`  written ${e.status} ${e.case.label} gid=${String(e.case.gid)}`);
  for (const g of report.stranded.slice(0, 10)) console.log(`  stranded ${g}`);
  process.exitCode = report.serverErrors.length + report.writtenOnRefusal.length + report.stranded.length > 0 ? 1 : 0;
} finally {
  await tm.close();
  await peer.close();
  await redis.stop();
}
