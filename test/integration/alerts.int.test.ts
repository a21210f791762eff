import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { createLogger } from '@dtm-ts/telemetry';
import { raiseAlert, type Crossing, type RetryAlert } from '@dtm-ts/runtime';
import { startRedis, type RedisProcess } from '@dtm-ts/testing';
import type { RunningTm } from '@dtm-ts/tm';
import { startBranchPeer, type BranchPeer } from '../peers/http-branch-peer';
import { dtmClient, sagaBody, startTestTm, uniqueGid, type DtmClient } from '../support/tm-harness';

/** A webhook that records every JSON body POSTed to it. */
const startWebhook = async () => {
  const received: RetryAlert[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push(JSON.parse(body) as RetryAlert);
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/alert`,
    received,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
};

const until = async (what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 30_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) expect.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('retry alerts (ALERT_RETRY_LIMIT, ALERT_WEBHOOK)', () => {
  let redis: RedisProcess;
  let tm: RunningTm;
  let peer: BranchPeer;
  let dtm: DtmClient;
  let hook: Awaited<ReturnType<typeof startWebhook>>;

  beforeAll(async () => {
    redis = await startRedis();
    hook = await startWebhook();
    peer = await startBranchPeer();
    tm = await startTestTm(redis.url, { alertRetryLimit: 2, alertWebhook: hook.url });
    dtm = dtmClient(tm.url);
  });
  afterAll(async () => {
    await tm?.close();
    await peer?.close();
    await hook?.close();
    await redis?.stop();
  });

  it('when a branch fails past the limit, then the webhook gets exactly one alert per crossing, and the console lists them', async () => {
    const gid = uniqueGid('alert');
    // errors 1, 2 (crossing), 3 (same run), ongoing (run ends), errors 1, 2 (second crossing), success.
    peer.script('flaky', [
      { status: 500, body: 'boom 1' },
      { status: 500, body: 'boom 2' },
      { status: 500, body: 'boom 3' },
      425,
      { status: 503, body: 'down 1' },
      { status: 503, body: 'down 2' },
      200,
    ]);
    const submit = await dtm.post(
      '/submit',
      sagaBody(gid, [{ action: peer.url('flaky'), compensate: peer.url('flaky-undo') }]),
    );
    expect(submit.status).toBe(200);
    await dtm.waitFor(gid, 'succeed', 45_000);
    await until('two alerts', () => hook.received.length >= 2);
    // Every alert is recorded (and claimed) in Redis before it is POSTed; once the list is settled at
    // two and the last call is long past, a third could only have come from a duplicate claim.
    const listed = async () => (await (await fetch(`${tm.url}/api/console/alerts`)).json()) as { alerts: RetryAlert[] };
    await until('the console to list two alerts', async () => (await listed()).alerts.length === 2);
    await tm.infra.redis.ping();
    expect(hook.received).toHaveLength(2);
    expect(hook.received[0]).toMatchObject({
      gid,
      trans_type: 'saga',
      branch_id: '01',
      op: 'action',
      retry_count: 2,
      error: expect.stringContaining('boom 2'),
    });
    expect(hook.received[1]).toMatchObject({
      gid,
      branch_id: '01',
      op: 'action',
      retry_count: 2,
      error: expect.stringContaining('down 2'),
    });
    const { alerts } = await listed();
    expect(alerts.map((a) => a.error)).toEqual([hook.received[1]!.error, hook.received[0]!.error]);
    const tx = (await (await fetch(`${tm.url}/api/console/tx?gid=${encodeURIComponent(gid)}`)).json()) as {
      alerts: RetryAlert[];
    };
    expect(tx.alerts).toHaveLength(2);
  });

  it('when several workers see the same crossing, then one of them raises it', async () => {
    hook.received.length = 0;
    const crossing: Crossing = {
      key: `race\u000001\u0000action\u00001`,
      alert: {
        gid: 'race',
        trans_type: 'saga',
        status: 'submitted',
        branch_id: '01',
        op: 'action',
        error: 'x',
        retry_count: 3,
        next_retry_at: new Date().toISOString(),
      },
    };
    const workers = Array.from({ length: 4 }, () => new Redis(redis.url));
    try {
      const logger = createLogger('silent', 'alerts-test');
      const raised = await Promise.all(
        workers.map((r) =>
          raiseAlert(
            { redis: r, prefix: tm.infra.config.prefix, limit: 3, webhook: hook.url, logger, now: Date.now },
            crossing,
          ),
        ),
      );
      expect(raised.filter(Boolean)).toHaveLength(1);
      expect(hook.received.map((a) => a.gid)).toEqual(['race']);
    } finally {
      workers.forEach((r) => r.disconnect());
    }
  });
});
