/**
 * `npm run docs:screenshots`: runs a TM with a few transactions in every state and photographs the
 * console (list and detail, light and dark) into docs/.
 */
import { mkdirSync } from 'node:fs';
import { loadConfig } from '@dtm-ts/config';
import { createLogger } from '@dtm-ts/telemetry';
import { startRedis } from '@dtm-ts/testing';
import { startTm } from '@dtm-ts/tm';
import { startBranchPeer } from '../peers/http-branch-peer';
import { launchBrowser } from './browser';

const OUT = new URL('../../docs/', import.meta.url);

const redis = await startRedis();
const peer = await startBranchPeer();
const config = loadConfig(
  {},
  {
    redisUrl: redis.url,
    port: 0,
    grpcPort: 0,
    host: '127.0.0.1',
    prefix: 'shots',
    logLevel: 'warn',
    retryIntervalS: 2,
    alertRetryLimit: 2,
    traceUrlTemplate: 'http://jaeger:16686/trace/{traceId}',
    tracesExporter: 'otlp',
    otlpEndpoint: peer.url('v1/traces'),
  },
);
const tm = await startTm(config, createLogger('warn', 'screenshots'));
const submit = async (body: Record<string, unknown>, traceparent?: string) => {
  const r = await fetch(`${tm.url}/api/dtmsvr/submit`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(traceparent ? { traceparent } : {}) },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`submit: ${r.status} ${await r.text()}`);
};
const saga = (gid: string, banks: [string, string], amount: number) => ({
  gid,
  trans_type: 'saga',
  steps: banks.map((b) => ({ action: peer.url(`${b}/TransOut`), compensate: peer.url(`${b}/TransOutRevert`) })),
  payloads: banks.map((b) => JSON.stringify({ account: `${b}-42`, amount })),
});
const statusOf = async (gid: string) =>
  ((await (await fetch(`${tm.url}/api/dtmsvr/query?gid=${gid}`)).json()) as { transaction?: { status: string } })
    .transaction?.status;
const waitFor = async (gid: string, ok: (s: string | undefined) => boolean) => {
  for (let i = 0; i < 400 && !ok(await statusOf(gid)); i++) await new Promise((r) => setTimeout(r, 50));
};

try {
  peer.script('bank-c/TransOut', [{ status: 409, body: '{"dtm_result":"FAILURE","message":"insufficient balance"}' }]);
  peer.script('bank-d/TransOut', [{ status: 503, body: 'bank-d is down for maintenance' }]);
  for (let i = 1; i <= 6; i++) {
    await submit(saga(`order-100${i}`, ['bank-a', 'bank-b'], 10 * i));
    await waitFor(`order-100${i}`, (s) => s === 'succeed');
  }
  await submit(
    saga('order-1007', ['bank-a', 'bank-c'], 500),
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  );
  await waitFor('order-1007', (s) => s === 'failed');
  await submit({
    gid: 'notify-2001',
    trans_type: 'msg',
    steps: [{ action: peer.url('mail/Send') }],
    payloads: ['{"to":"ops@example.com"}'],
  });
  await submit(saga('order-1008', ['bank-a', 'bank-d'], 75));
  await waitFor('notify-2001', (s) => s === 'succeed');
  // Let order-1008 fail a few times (and raise its alert).
  for (let i = 0; i < 200 && peer.callsTo('bank-d/TransOut').length < 3; i++)
    await new Promise((r) => setTimeout(r, 50));

  mkdirSync(OUT, { recursive: true });
  const browser = await launchBrowser();
  for (const scheme of ['light', 'dark'] as const) {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, colorScheme: scheme });
    const suffix = scheme === 'light' ? '' : '-dark';
    await page.goto(`${tm.url}/`);
    await page.locator('table.tx tbody tr[data-gid]').nth(7).waitFor();
    await page.locator('.stat dd').first().filter({ hasText: '/min' }).waitFor({ timeout: 15_000 });
    await page.screenshot({ path: new URL(`console-list${suffix}.png`, OUT).pathname });
    await page.goto(`${tm.url}/tx/order-1007`);
    await page.locator('ol.timeline > li').last().waitFor();
    await page.locator('.stat dd').first().filter({ hasText: '/min' }).waitFor({ timeout: 15_000 });
    await page.screenshot({ path: new URL(`console-detail${suffix}.png`, OUT).pathname, fullPage: true });
    await page.close();
  }
  await browser.close();
  console.log(`screenshots written to ${OUT.pathname}`);
} finally {
  await tm.close();
  await peer.close();
  await redis.stop();
}
