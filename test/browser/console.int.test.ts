import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startRedis, type RedisProcess } from '@dtm-ts/testing';
import type { RunningTm } from '@dtm-ts/tm';
import { startBranchPeer, type BranchPeer } from '../peers/http-branch-peer';
import { dtmClient, sagaBody, startTestTm, uniqueGid, type DtmClient } from '../support/tm-harness';
import { launchBrowser } from './browser';

/** Retries `check` until it stops throwing (the page refreshes on its own), failing with its last error. */
const eventually = async <T>(check: () => Promise<T>, timeoutMs = 20_000): Promise<T> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
};

/** The little of the DOM these tests read inside the page (the project's types have no DOM library). */
interface El {
  getAttribute(name: string): string | null;
  readonly textContent: string | null;
  readonly classList: { contains(name: string): boolean };
  querySelectorAll(selector: string): Iterable<El>;
}

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('admin console in Chromium', () => {
  let redis: RedisProcess;
  let tm: RunningTm;
  let peer: BranchPeer;
  let dtm: DtmClient;
  let browser: Browser;
  let page: Page;
  const succeeded: string[] = [];
  const failedGid = uniqueGid('failed');

  const step = (n: string) => ({ action: peer.url(`${n}`), compensate: peer.url(`${n}-undo`) });
  const submit = async (gid: string, steps: { action: string; compensate: string }[], traceparent?: string) => {
    const r = await fetch(`${tm.url}/api/dtmsvr/submit`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(traceparent ? { traceparent } : {}) },
      body: JSON.stringify(sagaBody(gid, steps)),
    });
    expect(r.status).toBe(200);
  };
  const rowsOf = (p: Page) => p.locator('table.tx tbody tr[data-gid]');
  const gidsShown = async (p: Page) =>
    rowsOf(p).evaluateAll((rows: El[]) => rows.map((r) => r.getAttribute('data-gid')));

  beforeAll(async () => {
    redis = await startRedis();
    peer = await startBranchPeer();
    // Spans go to the peer (which answers 200), so the API records the caller's trace context in the log.
    tm = await startTestTm(redis.url, {
      traceUrlTemplate: 'http://jaeger.example:16686/trace/{traceId}',
      alertRetryLimit: 1,
      tracesExporter: 'otlp',
      otlpEndpoint: peer.url('v1/traces'),
    });
    dtm = dtmClient(tm.url);
    peer.script('refuse', [409]);
    for (let i = 0; i < 5; i++) {
      const gid = uniqueGid(`ok${i}`);
      await submit(gid, [step('a'), step('b')]);
      succeeded.push(gid);
    }
    await submit(failedGid, [step('a'), step('refuse')], `00-${TRACE_ID}-00f067aa0ba902b7-01`);
    for (const gid of succeeded) await dtm.waitFor(gid, 'succeed');
    await dtm.waitFor(failedGid, 'failed');
    browser = await launchBrowser();
    page = await browser.newPage();
  });

  afterAll(async () => {
    await browser?.close();
    await tm?.close();
    await peer?.close();
    await redis?.stop();
  });

  it('the list shows the submitted sagas, newest first, with their statuses', async () => {
    await page.goto(`${tm.url}/`);
    await eventually(async () => expect(await rowsOf(page).count()).toBe(6));
    const shown = await gidsShown(page);
    expect(shown).toEqual([failedGid, ...[...succeeded].reverse()]);
    for (const gid of succeeded) {
      expect(await page.locator(`tr[data-gid="${gid}"] .badge`).textContent()).toBe('succeed');
    }
    expect(await page.locator(`tr[data-gid="${failedGid}"] .badge`).textContent()).toBe('failed');
    // The live panel reads the metrics.
    await eventually(async () =>
      expect(await page.locator('.live').textContent()).toMatch(/queue\s*\d+ ready, \d+ delayed/),
    );
    // Counts per status, from the read model.
    await eventually(async () =>
      expect(await page.locator('.counts').textContent()).toMatch(/succeed\s*5.*failed\s*1/),
    );
  });

  it('filters by status, gid and create time, and pages with next_position', async () => {
    await page.goto(`${tm.url}/`);
    await rowsOf(page).first().waitFor();
    await page.getByLabel('Status', { exact: true }).selectOption('failed');
    await page.getByRole('button', { name: 'Apply' }).click();
    await eventually(async () => expect(await gidsShown(page)).toEqual([failedGid]));
    expect(page.url()).toContain('status=failed');

    await page.getByLabel('Status', { exact: true }).selectOption('');
    await page.getByLabel('gid', { exact: true }).fill(succeeded[2]!);
    await page.getByRole('button', { name: 'Apply' }).click();
    await eventually(async () => expect(await gidsShown(page)).toEqual([succeeded[2]]));

    // Created from a minute ahead: nothing yet.
    await page.getByRole('button', { name: 'Clear' }).click();
    const ahead = new Date(Date.now() + 60_000);
    const local = new Date(ahead.getTime() - ahead.getTimezoneOffset() * 60_000).toISOString().slice(0, 19);
    await page.getByLabel('Created from').fill(local);
    await page.getByRole('button', { name: 'Apply' }).click();
    await eventually(async () =>
      expect(await page.locator('table.tx tbody').textContent()).toContain('No transactions'),
    );

    // Two per page: three pages, every transaction once, in order; and back again.
    await page.goto(`${tm.url}/?limit=2`);
    const newestFirst = [failedGid, ...[...succeeded].reverse()];
    await eventually(async () => expect(await gidsShown(page)).toEqual(newestFirst.slice(0, 2)));
    await page.getByRole('button', { name: 'Next page →' }).click();
    await eventually(async () => expect(await gidsShown(page)).toEqual(newestFirst.slice(2, 4)));
    await page.getByRole('button', { name: 'Next page →' }).click();
    await eventually(async () => expect(await gidsShown(page)).toEqual(newestFirst.slice(4, 6)));
    expect(await page.getByRole('button', { name: 'Next page →' }).isDisabled()).toBe(true);
    await page.getByRole('button', { name: '← Previous page' }).click();
    await eventually(async () => expect(await gidsShown(page)).toEqual(newestFirst.slice(2, 4)));
  });

  it('the detail page of a failed saga shows its branches, compensations and timeline', async () => {
    await page.goto(`${tm.url}/`);
    await page.locator(`tr[data-gid="${failedGid}"] a`).click();
    await page.waitForURL(`**/tx/${failedGid}`);
    const branches = page.locator('table.branches tbody tr');
    await eventually(async () => expect(await branches.count()).toBe(4));
    const rows = await branches.evaluateAll((trs: El[]) =>
      trs.map((tr) => ({
        cells: [...tr.querySelectorAll('td')].slice(0, 4).map((td) => td.textContent?.trim()),
        undo: tr.classList.contains('undo'),
      })),
    );
    expect(rows.map((r) => r.cells)).toEqual([
      ['01', 'compensate', peer.url('a-undo'), 'succeed'],
      ['01', 'action', peer.url('a'), 'succeed'],
      ['02', 'compensate', peer.url('refuse-undo'), 'succeed'],
      ['02', 'action', peer.url('refuse'), 'failed'],
    ]);
    expect(rows.map((r) => r.undo)).toEqual([true, false, true, false]);
    // Payloads decoded as text.
    expect(await page.locator('table.branches').textContent()).toContain('{"amount":30,"step":0}');

    const events = page.locator('ol.timeline > li');
    const texts = await events.allTextContents();
    expect(texts[0]).toContain('TransactionPrepared');
    expect(texts.some((t) => t.includes('TransactionAborting') && t.includes('rollback reason'))).toBe(true);
    expect(texts.at(-1)).toContain('TransactionFailed');
    // Compensations in reverse order (DTM also compensates the step whose action failed), highlighted.
    const undone = page.locator('ol.timeline > li.undo');
    expect(await undone.allTextContents()).toEqual([
      expect.stringContaining('02/compensate'),
      expect.stringContaining('01/compensate'),
    ]);
    expect(await page.locator('.compensations li').allTextContents()).toEqual([
      expect.stringContaining('02/compensate'),
      expect.stringContaining('01/compensate'),
    ]);
    // The trace id links to the configured trace UI.
    const link = page.getByRole('link', { name: TRACE_ID });
    expect(await link.getAttribute('href')).toBe(`http://jaeger.example:16686/trace/${TRACE_ID}`);
  });

  it('forceStop from the page stops a transaction that keeps retrying (after a confirmation)', async () => {
    peer.script('down', [500]);
    const gid = uniqueGid('stuck');
    await submit(gid, [step('down')]);
    await eventually(async () => expect(peer.callsTo('down').length).toBeGreaterThanOrEqual(1));
    // The unfinished view lists it.
    await page.goto(`${tm.url}/unfinished`);
    await eventually(async () => expect(await gidsShown(page)).toContain(gid));
    // Its first error crossed ALERT_RETRY_LIMIT (1 here): the alerts page lists it.
    await page.goto(`${tm.url}/alerts`);
    const alert = page.locator('table.tx tbody tr', { hasText: gid });
    await eventually(async () => expect(await alert.textContent()).toMatch(/01\/action\s*1\s*.*boom/));
    await alert.getByRole('link', { name: gid }).click();
    await page.waitForURL(`**/tx/${encodeURIComponent(gid)}`);
    await eventually(async () => expect(await page.locator('section.alerts').textContent()).toContain('01/action'));

    const stop = page.getByRole('button', { name: 'Force stop' });
    await stop.waitFor();
    // Each failed call shows its answer and when the next try is due.
    const retried = page.locator('ol.timeline > li', { hasText: 'BranchRetryScheduled' }).first();
    await retried.waitFor();
    expect(await retried.textContent()).toMatch(/01\/action.*error.*boom.*next try at \d{4}-\d\d-\d\d /);
    // Escape cancels, and nothing happens.
    await stop.click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    expect(await page.locator('dialog button:focus').textContent()).toBe('Cancel');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    expect((await dtm.query(gid)).transaction?.status).toBe('submitted');

    // Retry now: the retry schedule is reset, as the timeline shows.
    await page.getByRole('button', { name: 'Retry now' }).click();
    await dialog.getByRole('button', { name: 'Retry now' }).click();
    await eventually(async () =>
      expect(await page.locator('ol.timeline').textContent()).toContain('RetryScheduleReset'),
    );

    await stop.click();
    await dialog.getByRole('button', { name: 'Force stop' }).click();
    await dtm.waitFor(gid, 'failed');
    await eventually(async () => expect(await page.locator('.actions .badge').textContent()).toBe('failed'));
    expect(await page.locator('ol.timeline > li').last().textContent()).toContain('force stopped');
    expect(await stop.isDisabled()).toBe(true);
  });

  it('topics can be listed, subscribed to, unsubscribed from and deleted', async () => {
    const topic = `orders-${Date.now()}`;
    await page.goto(`${tm.url}/topics`);
    await page.getByLabel('Topic').fill(topic);
    await page.getByLabel('Subscriber URL').fill(peer.url('sub1'));
    await page.getByLabel('Remark').fill('first');
    await page.getByRole('button', { name: 'Subscribe', exact: true }).click();
    const section = page.locator(`section[data-topic="${topic}"]`);
    await eventually(async () => expect(await section.textContent()).toContain(peer.url('sub1')));
    await page.getByLabel('Subscriber URL').fill(peer.url('sub2'));
    await page.getByLabel('Remark').fill('second');
    await page.getByRole('button', { name: 'Subscribe', exact: true }).click();
    await eventually(async () => expect(await section.locator('tbody tr').count()).toBe(2));

    await section.getByRole('button', { name: `Unsubscribe ${peer.url('sub1')} from ${topic}` }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Unsubscribe' }).click();
    await eventually(async () => expect(await section.locator('tbody tr').count()).toBe(1));
    const kv = await dtm.get(`/queryKV?cat=topics&key=${topic}`);
    expect(JSON.parse((kv.body.kv as { v: string }[])[0]!.v)).toEqual([{ url: peer.url('sub2'), remark: 'second' }]);

    await section.getByRole('button', { name: `Delete topic ${topic}` }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete topic' }).click();
    await section.waitFor({ state: 'detached' });
    expect((await dtm.get(`/queryKV?cat=topics&key=${topic}`)).body).toEqual({ kv: [] });
  });

  it('a deep link opens the right transaction, its gid shown as text, under a CSP, in little script', async () => {
    const gid = `deep <b>link</b>/ü?#%&"x'`;
    await submit(gid, [step('a')]);
    await dtm.waitFor(gid, 'succeed');
    const scripts: number[] = [];
    const p = await browser.newPage();
    p.on('response', (r) => {
      if (r.request().resourceType() === 'script') scripts.push(r.request().url().length);
    });
    let scriptBytes = 0;
    p.on('response', (r) => {
      if (r.request().resourceType() === 'script') void r.body().then((b) => (scriptBytes += b.length));
    });
    const res = await p.goto(`${tm.url}/tx/${encodeURIComponent(gid)}`);
    expect(res?.headers()['content-security-policy']).toContain("script-src 'self'");
    await eventually(async () => expect(await p.locator('h1 code').textContent()).toBe(gid));
    expect(await p.locator('main b').count()).toBe(0);
    await eventually(async () => expect(await p.locator('table.branches tbody tr').count()).toBe(2));
    expect(await p.locator('.actions .badge').textContent()).toBe('succeed');
    await eventually(async () => expect(scriptBytes).toBeGreaterThan(10_000));
    expect(scripts.length).toBeGreaterThanOrEqual(8);
    expect(scriptBytes).toBeLessThan(100 * 1024);
    await p.close();
  });
});
