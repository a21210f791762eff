import { execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Timeline } from '@dtm-ts/api';
import { startRedis, type RedisProcess } from '@dtm-ts/testing';
import type { RunningTm } from '@dtm-ts/tm';
import { startBranchPeer, type BranchPeer } from '../peers/http-branch-peer';
import { dtmClient, sagaBody, startTestTm, uniqueGid, type DtmClient } from '../support/tm-harness';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

let redis: RedisProcess;
let tm: RunningTm;
let peer: BranchPeer;
let dtm: DtmClient;

beforeAll(async () => {
  redis = await startRedis();
  tm = await startTestTm(redis.url);
  peer = await startBranchPeer();
  dtm = dtmClient(tm.url);
});
afterAll(async () => {
  await tm?.close();
  await peer?.close();
  await redis?.stop();
});

/** Runs `npm run replay -- <args>` (its script, through tsx) against this test's log. */
const replayCli = async (...args: string[]): Promise<{ stdout: string; stderr: string }> => {
  const c = tm.infra.config;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    REDIS_URL: redis.url,
    KEY_PREFIX: c.prefix,
    LOG_PARTITIONS: String(c.partitions),
    EVENT_STORE: c.eventStore,
    LOG_LEVEL: 'warn',
    ...(c.esdbUrl ? { ESDB_URL: c.esdbUrl } : {}),
  };
  return promisify(execFile)(
    resolve(REPO_ROOT, 'node_modules/.bin/tsx'),
    ['services/worker/src/replay-main.ts', ...args],
    {
      cwd: REPO_ROOT,
      env,
      timeout: 60_000,
    },
  );
};

/** A saga of three steps whose last action is refused: the first two are compensated, in reverse order. */
const failedSaga = async (): Promise<{ gid: string; submittedAt: number }> => {
  const gid = uniqueGid('replay');
  const steps = [0, 1, 2].map((i) => ({ action: peer.url(`${gid}/a${i}`), compensate: peer.url(`${gid}/c${i}`) }));
  peer.script(`${gid}/a2`, [409]);
  // The second compensation errors once: the audit shows the retry, then its success.
  peer.script(`${gid}/c1`, [500, 200]);
  const submittedAt = Date.now();
  await dtm.post('/submit', sagaBody(gid, steps, { retry_interval: 1 }));
  await dtm.waitFor(gid, 'failed', 20_000);
  return { gid, submittedAt };
};

describe('audit replay', () => {
  let saga: { gid: string; submittedAt: number };
  let timeline: Timeline;

  beforeAll(async () => {
    saga = await failedSaga();
    const res = await dtm.get(`/events?gid=${encodeURIComponent(saga.gid)}`);
    expect(res.status).toBe(200);
    timeline = res.body as unknown as Timeline;
  });

  it('when a saga failed, then GET /events tells every event in order with its time, call, outcome and status', () => {
    const { gid } = saga;
    expect(timeline).toMatchObject({ gid, transType: 'saga', status: 'failed' });
    expect(timeline.events.map((e) => e.revision)).toEqual(timeline.events.map((_, i) => i));
    expect(timeline.version).toBe(timeline.events.length - 1);
    const times = timeline.events.map((e) => Date.parse(e.at));
    expect(times.every((t, i) => Number.isFinite(t) && (i === 0 || t >= times[i - 1]!))).toBe(true);
    expect(times[0]).toBeGreaterThanOrEqual(saga.submittedAt - 1000);

    // Every status change, in order.
    expect(timeline.events.filter((e) => e.statusChanged).map((e) => e.status)).toEqual([
      'prepared',
      'submitted',
      'aborting',
      'failed',
    ]);
    const calls = timeline.events.filter((e) => e.branchId).map((e) => `${e.branchId}/${e.op} ${e.outcome}`);
    expect(calls).toEqual([
      '01/action succeed',
      '02/action succeed',
      '03/action failed',
      '03/compensate succeed',
      '02/compensate error',
      '02/compensate succeed',
      '01/compensate succeed',
    ]);
    const refused = timeline.events.find((e) => e.type === 'BranchFailed');
    expect(refused).toMatchObject({ url: peer.url(`${gid}/a2`), reason: expect.stringContaining('FAILURE') });
    const retry = timeline.events.find((e) => e.type === 'BranchRetryScheduled');
    expect(retry).toMatchObject({ url: peer.url(`${gid}/c1`), reason: expect.stringContaining('500') });
    expect(Date.parse(retry!.retryAt!)).toBeGreaterThan(Date.parse(retry!.at));
  });

  it('when a saga failed, then its compensations come in the order they ran, with their times, after the abort', () => {
    const abortAt = Date.parse(timeline.events.find((e) => e.type === 'TransactionAborting')!.at);
    expect(timeline.compensations.map((c) => `${c.branchId}/${c.op} ${c.outcome}`)).toEqual([
      '03/compensate succeed',
      '02/compensate error',
      '02/compensate succeed',
      '01/compensate succeed',
    ]);
    const times = timeline.compensations.map((c) => Date.parse(c.at));
    expect(times[0]).toBeGreaterThanOrEqual(abortAt);
    expect(times.every((t, i) => i === 0 || t >= times[i - 1]!)).toBe(true);
    // Each compensation matches the call the RM saw, in the same order.
    const rmOrder = peer.calls.filter((c) => c.path.startsWith(`${saga.gid}/c`)).map((c) => c.path.slice(-2));
    expect(rmOrder).toEqual(['c2', 'c1', 'c1', 'c0']);
  });

  it('when npm run replay is given the gid, then it prints the same timeline, with the compensations in order', async () => {
    const { stdout } = await replayCli('--gid', saga.gid);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`gid ${saga.gid}  saga  failed  (revision ${timeline.version})`);
    for (const e of timeline.events) {
      expect(lines[1 + e.revision]).toContain(e.at);
      expect(lines[1 + e.revision]).toContain(`#${e.revision}`);
      expect(lines[1 + e.revision]).toContain(e.text);
    }
    const at = lines.indexOf('  compensations, in order:');
    expect(at).toBe(1 + timeline.events.length);
    expect(lines.slice(at + 1)).toEqual(
      timeline.compensations.map((c, i) => `    ${i + 1}. ${c.at}  ${c.branchId}/${c.op}  ${c.outcome}  ${c.url}`),
    );
    // --json is exactly what the endpoint answers.
    const json = await replayCli('--gid', saga.gid, '--json');
    expect(JSON.parse(json.stdout)).toEqual(timeline);
  });

  it('when npm run replay runs over the whole log, then --since and --until pick the transactions active then', async () => {
    const since = new Date(saga.submittedAt - 1000).toISOString();
    const inWindow = await replayCli('--all', '--since', since, '--json');
    const printed = inWindow.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Timeline);
    expect(printed.map((t) => t.gid)).toContain(saga.gid);
    expect(printed.find((t) => t.gid === saga.gid)).toEqual(timeline);
    expect(inWindow.stderr).toMatch(/\d+ transaction\(s\)/);

    const before = await replayCli('--all', '--until', new Date(saga.submittedAt - 60_000).toISOString());
    expect(before.stdout).not.toContain(saga.gid);
  });

  it('when the gid is unknown or missing, then /events answers 404 or 400 and the CLI exits 2', async () => {
    expect((await dtm.get(`/events?gid=${uniqueGid('nobody')}`)).status).toBe(404);
    expect((await dtm.get('/events')).status).toBe(400);
    await expect(replayCli('--all', '--since', 'yesterday')).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--since needs an ISO-8601 time'),
    });
  });
});
