import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DtmGrpcClient } from '@dtm-ts/client';
import { freePort } from '@dtm-ts/testing';
import { startBranchPeer, type BranchPeer } from '../peers/http-branch-peer';
import { sagaBody, uniqueGid } from '../support/tm-harness';

/**
 * `npm start` with TM_PROCESSES=2, as a user runs it (no REDIS_URL: the primary manages one redis-server): both
 * processes serve the one HTTP port and the one gRPC port, each its own metrics port; a killed process is
 * restarted while the other keeps serving; SIGTERM stops them all.
 */
const REPO_ROOT = resolve(import.meta.dirname, '../..');

interface Up {
  readonly pid: number;
  readonly metricsPort: number;
}

/** The primary and what it logged: the `dtm-ts is up` line of each process it started, in order. */
interface Primary {
  readonly child: ChildProcess;
  readonly ups: Up[];
  readonly lines: string[];
  readonly exited: Promise<number | null>;
}

let primary: Primary | undefined;
let peer: BranchPeer | undefined;
let dataDir: string | undefined;

afterEach(async () => {
  if (primary && primary.child.exitCode === null && primary.child.signalCode === null) {
    // A SIGKILLed primary would leave its redis-server behind: kill the whole tree.
    const tree = descendants(primary.child.pid!);
    primary.child.kill('SIGKILL');
    await primary.exited;
    for (const pid of tree.filter(alive)) process.kill(pid, 'SIGKILL');
  }
  primary = undefined;
  await peer?.close();
  peer = undefined;
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  dataDir = undefined;
});

const startPrimary = (env: Record<string, string>): Primary => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/tm/src/main.ts'], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ups: Up[] = [];
  const lines: string[] = [];
  let partial = '';
  const read = (chunk: Buffer): void => {
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      if (!line.startsWith('{')) continue;
      const entry = JSON.parse(line) as { msg?: string; pid?: number; metricsPort?: number };
      if (entry.msg === 'dtm-ts is up' && entry.pid && entry.metricsPort)
        ups.push({ pid: entry.pid, metricsPort: entry.metricsPort });
    }
  };
  child.stdout.on('data', read);
  child.stderr.on('data', read);
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  return { child, ups, lines, exited };
};

/** Live descendants of `pid`, children first (Linux /proc). */
const descendants = (pid: number): number[] => {
  let children: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`))
      children.push(
        ...readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
      );
  } catch {
    children = [];
  }
  return children.flatMap((c) => [c, ...descendants(c)]);
};
const commOf = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
};
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** One HTTP request on a connection of its own (`agent: false`), so the primary hands each to the next process. */
const call = (port: number, path: string, body?: unknown): Promise<{ status: number; text: string }> =>
  new Promise((done, fail) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: payload ? 'POST' : 'GET',
        agent: false,
        headers: payload ? { 'content-type': 'application/json' } : {},
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => done({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', fail);
    req.setTimeout(10_000, () => req.destroy(new Error(`${path}: no answer in 10 s`)));
    req.end(payload);
  });

/** Sum of a counter's samples in a Prometheus text page, for samples whose labels contain `labels`. */
const counter = (page: string, name: string, labels = ''): number =>
  page
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && l.includes(labels))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);

const submitSagas = async (port: number, label: string, n: number): Promise<string[]> => {
  const gids = Array.from({ length: n }, () => uniqueGid(label));
  await Promise.all(
    gids.map(async (gid) => {
      const steps = [0, 1].map((i) => ({ action: peer!.url(`${gid}/a${i}`), compensate: peer!.url(`${gid}/c${i}`) }));
      const r = await call(port, '/api/dtmsvr/submit', sagaBody(gid, steps));
      expect(r.status, r.text).toBe(200);
    }),
  );
  return gids;
};

const allSucceeded = async (port: number, gids: string[]): Promise<boolean> => {
  const answers = await Promise.all(gids.map((g) => call(port, `/api/dtmsvr/query?gid=${g}`)));
  return answers.every((a) => a.status === 200 && JSON.parse(a.text).transaction?.status === 'succeed');
};

describe('TM_PROCESSES', () => {
  it('when two processes run, then both serve the one port, a killed one is restarted, and SIGTERM stops all', async () => {
    peer = await startBranchPeer();
    dataDir = mkdtempSync(join(tmpdir(), 'tmp-'));
    const [port, grpcPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
    primary = startPrimary({
      TM_PROCESSES: '2',
      DATA_DIR: dataDir,
      REDIS_URL: '',
      PORT: String(port),
      GRPC_PORT: String(grpcPort),
      METRICS_PORT: String(metricsPort),
      HOST: '127.0.0.1',
      KEY_PREFIX: `procs${randomUUID().slice(0, 8)}`,
      LOG_LEVEL: 'info',
      RETRY_INTERVAL: '1',
    });
    const p = primary;
    await expect.poll(() => p.ups.length, { timeout: 60_000 }).toBe(2);
    const [first, second] = p.ups as [Up, Up];
    expect(first.metricsPort).not.toBe(second.metricsPort);
    // One redis-server, the primary's, for both.
    expect(descendants(p.child.pid!).filter((pid) => commOf(pid) === 'redis-server')).toHaveLength(1);

    const before = await submitSagas(port, 'procs', 40);
    await expect.poll(() => allSucceeded(port, before), { timeout: 30_000 }).toBe(true);
    // Each process took submits on the shared port and drove passes (branch calls) itself.
    for (const up of [first, second]) {
      const page = (await call(up.metricsPort, '/metrics')).text;
      expect(counter(page, 'dtm_server_process_total', 'api="submit"')).toBeGreaterThan(0);
      expect(counter(page, 'dtm_branch_process_total')).toBeGreaterThan(0);
    }
    // The gRPC port is shared too: separate clients (connections) get answers.
    for (let i = 0; i < 4; i++) expect(await new DtmGrpcClient(`127.0.0.1:${grpcPort}`).newGid()).not.toBe('');

    process.kill(first.pid, 'SIGKILL');
    await expect
      .poll(() => p.lines.some((l) => l.includes('TM process exited; restarting it')), { timeout: 15_000 })
      .toBe(true);
    const during = await submitSagas(port, 'survivor', 20);
    await expect.poll(() => allSucceeded(port, during), { timeout: 30_000 }).toBe(true);
    await expect.poll(() => p.ups.length, { timeout: 60_000 }).toBe(3);
    const restarted = p.ups[2]!;
    expect(restarted.pid).not.toBe(first.pid);
    expect(alive(second.pid)).toBe(true);
    expect((await call(restarted.metricsPort, '/metrics')).status).toBe(200);

    const tree = [...descendants(p.child.pid!)];
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    await expect.poll(() => tree.filter(alive), { timeout: 15_000 }).toEqual([]);
  }, 240_000);
});
