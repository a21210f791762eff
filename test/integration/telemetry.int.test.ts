import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { initTracing } from '@dtm-ts/telemetry';
import { sagaBody, uniqueGid, useTmFixture } from '../support/tm-harness';

const exporter = new InMemorySpanExporter();
let stopTracing: () => Promise<void>;
beforeAll(() => {
  // Before the TM starts, so that its own initTracing finds the provider in place.
  stopTracing = initTracing({ serviceName: 'dtm-test', exporter: 'none', sampleRatio: 1 }, exporter);
});
const fx = useTmFixture();
afterAll(async () => {
  await stopTracing?.();
});

const traceIdOf = (traceparent: unknown): string => String(traceparent).split('-')[1] ?? '';
const inTrace = (traceId: string): ReadableSpan[] =>
  exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
const steps = (gid: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    action: fx.peer.url(`${gid}/a${i}`),
    compensate: fx.peer.url(`${gid}/c${i}`),
  }));
const submitSpanOf = (gid: string): ReadableSpan | undefined =>
  exporter
    .getFinishedSpans()
    .find(
      (s) => s.name === 'POST submit' && inTrace(s.spanContext().traceId).some((x) => x.attributes['dtm.gid'] === gid),
    );

describe('traces', () => {
  it('when a two-step saga runs, then one trace holds the API request, the pass and both branch calls, and the RM gets its traceparent', async () => {
    const gid = uniqueGid('trace-ok');
    await fx.dtm.post('/submit', sagaBody(gid, steps(gid, 2)));
    await fx.dtm.waitFor(gid, 'succeed');
    await expect.poll(() => submitSpanOf(gid)).toBeDefined();
    const traceId = submitSpanOf(gid)!.spanContext().traceId;
    await expect.poll(() => inTrace(traceId).filter((s) => s.name === 'dtm.branch action').length).toBe(2);
    const names = inTrace(traceId).map((s) => s.name);
    expect(names).toContain('POST submit');
    expect(names).toContain('dtm.pass');
    expect(names).toContain('dtm.append');
    for (const path of ['a0', 'a1']) {
      const tp = fx.peer.callsTo(`${gid}/${path}`)[0]!.headers.traceparent;
      expect(traceIdOf(tp)).toBe(traceId);
    }
    const branch = inTrace(traceId).find((s) => s.name === 'dtm.branch action')!;
    expect(branch.attributes).toMatchObject({ 'dtm.gid': gid, 'dtm.op': 'action', 'dtm.outcome': 'success' });
  });

  it("when the AP sends a traceparent, then the whole transaction joins the AP's trace", async () => {
    const gid = uniqueGid('trace-ap');
    const apTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await fetch(`${fx.tm.url}/api/dtmsvr/submit`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${apTrace}-00f067aa0ba902b7-01` },
      body: JSON.stringify(sagaBody(gid, steps(gid, 1))),
    });
    expect(res.status).toBe(200);
    await fx.dtm.waitFor(gid, 'succeed');
    expect(traceIdOf(fx.peer.callsTo(`${gid}/a0`)[0]!.headers.traceparent)).toBe(apTrace);
    await expect.poll(() => inTrace(apTrace).map((s) => s.name)).toContain('dtm.branch action');
  });

  it('when a saga fails, then its trace shows the compensations, and a retry from the queue stays in the same trace', async () => {
    const gid = uniqueGid('trace-fail');
    fx.peer.script(`${gid}/a0`, [425, 200]);
    fx.peer.script(`${gid}/a1`, [409]);
    await fx.dtm.post('/submit', sagaBody(gid, steps(gid, 2), { retry_interval: 1 }));
    await fx.dtm.waitFor(gid, 'failed', 10_000);
    const traceId = traceIdOf(fx.peer.callsTo(`${gid}/a0`)[0]!.headers.traceparent);
    expect(traceIdOf(fx.peer.callsTo(`${gid}/a0`)[1]!.headers.traceparent)).toBe(traceId);
    await expect.poll(() => inTrace(traceId).filter((s) => s.name === 'dtm.branch compensate').length).toBe(2);
    const passes = inTrace(traceId).filter((s) => s.name === 'dtm.pass');
    expect(passes.length).toBeGreaterThanOrEqual(2);
    const ongoing = inTrace(traceId).find(
      (s) => s.name === 'dtm.branch action' && s.attributes['dtm.outcome'] === 'ongoing',
    );
    expect(ongoing).toBeDefined();
  });
});

/** Parses Prometheus text into `name{labels}` → value. */
const parseProm = (text: string): Map<string, number> => {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${line}`);
    out.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return out;
};
const scrape = async () => {
  const r = await fetch(`${fx.tm.url}/api/metrics`);
  expect(r.status).toBe(200);
  return parseProm(await r.text());
};
const sum = (m: Map<string, number>, name: string, labels: Record<string, string> = {}): number =>
  [...m.entries()]
    .filter(([k]) => k === name || k.startsWith(`${name}{`))
    .filter(([k]) => Object.entries(labels).every(([l, v]) => k.includes(`${l}="${v}"`)))
    .reduce((a, [, v]) => a + v, 0);

describe('metrics', () => {
  it("serves Prometheus text whose counters move as a saga runs, with DTM's families and no gid label", async () => {
    const before = await scrape();
    const gid = uniqueGid('metrics');
    await fx.dtm.post('/submit', sagaBody(gid, steps(gid, 2)));
    await fx.dtm.waitFor(gid, 'succeed');
    const after = await scrape();
    const delta = (name: string, labels?: Record<string, string>) =>
      sum(after, name, labels) - sum(before, name, labels);
    expect(delta('dtm_server_process_total', { api: 'submit', status: 'ok' })).toBe(1);
    expect(delta('dtm_branch_process_total', { model: 'saga', branchtype: 'action', status: 'success' })).toBe(2);
    expect(delta('dtm_transaction_process_total', { model: 'saga' })).toBeGreaterThanOrEqual(1);
    expect(delta('dtm_transaction_handled_duration_count', { model: 'saga', status: 'succeed' })).toBe(1);
    expect(delta('dtm_event_append_duration_count')).toBeGreaterThanOrEqual(3);
    expect(sum(after, 'dtm_server_response_duration_count', { api: 'submit' })).toBeGreaterThanOrEqual(1);
    expect([...after.keys()].some((k) => k.includes('gid='))).toBe(false);
    expect([...after.keys()].some((k) => k.startsWith('dtm_queue_jobs'))).toBe(true);
    expect(after.has('dtm_oldest_overdue_seconds')).toBe(true);
  });

  it('counts retries by outcome', async () => {
    const before = await scrape();
    const gid = uniqueGid('metrics-retry');
    fx.peer.script(`${gid}/a0`, [500, 200]);
    await fx.dtm.post('/submit', sagaBody(gid, steps(gid, 1), { retry_interval: 1 }));
    await fx.dtm.waitFor(gid, 'succeed', 10_000);
    const after = await scrape();
    expect(
      sum(after, 'dtm_branch_retries_total', { outcome: 'error' }) -
        sum(before, 'dtm_branch_retries_total', { outcome: 'error' }),
    ).toBe(1);
  });
});
