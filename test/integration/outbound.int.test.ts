import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBranchTransport, OutboundPolicy, type Resolver } from '@dtm-ts/adapters';
import type { BranchRequest } from '@dtm-ts/ports';
import { startBranchPeer, type BranchPeer } from '../peers/http-branch-peer';
import { sagaBody, uniqueGid, useTmFixture } from '../support/tm-harness';

const request = (url: string): BranchRequest => ({
  gid: 'g-outbound',
  transType: 'saga',
  branchId: '01',
  op: 'action',
  url,
  data: '{"amount":30}',
  headers: {},
  timeoutMs: 3_000,
});

/** A table resolver: what a DNS server under an attacker's control could answer. */
const resolverOf =
  (names: Record<string, string>): Resolver =>
  (host) =>
    names[host]
      ? Promise.resolve([{ address: names[host], family: names[host].includes(':') ? 6 : 4 }])
      : Promise.reject(new Error(`ENOTFOUND ${host}`));

describe('outbound policy on the HTTP transport (connect time)', () => {
  let peer: BranchPeer;
  let redirector: Server;
  let redirectorUrl: string;

  beforeAll(async () => {
    peer = await startBranchPeer();
    // An RM that answers every call with a redirect to the recording peer.
    redirector = createServer((req, res) => {
      res.writeHead(302, { location: peer.url('Hit') }).end('{"dtm_result":"SUCCESS"}');
    });
    await new Promise<void>((ok) => redirector.listen(0, '127.0.0.1', ok));
    redirectorUrl = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await peer.close();
    redirector.closeAllConnections();
    await new Promise<void>((ok) => redirector.close(() => ok()));
  });

  it('when a name resolves to a link-local metadata address, then the call is an error naming it, and a good name works', async () => {
    const port = new URL(peer.url('x')).port;
    const policy = new OutboundPolicy({
      resolve: resolverOf({
        'rm.test': '127.0.0.1',
        'rebind.test': '169.254.169.254',
        'mapped.test': '::ffff:a9fe:a9fe',
      }),
    });
    const transport = new HttpBranchTransport({ policy });
    try {
      // Allowed by name at submit: only the resolved address shows what it is.
      expect(policy.refusal(`http://rebind.test:${port}/TransIn`)).toBeNull();
      const refused = await transport.call(request(`http://rebind.test:${port}/TransIn`));
      expect(refused.kind).toBe('error');
      expect(refused.kind === 'error' && refused.detail).toMatch(
        /refused: rebind\.test resolved to 169\.254\.169\.254, which is a link-local address.*denied by default/,
      );
      const mapped = await transport.call(request(`http://mapped.test:${port}/TransIn`));
      expect(mapped.kind === 'error' && mapped.detail).toMatch(/mapped\.test resolved to ::ffff:a9fe:a9fe/);
      // The live marker: the same transport reaches an allowed name through the injected resolver.
      expect(await transport.call(request(`http://rm.test:${port}/TransIn`))).toEqual({ kind: 'success' });
      expect(peer.callsTo('TransIn')).toHaveLength(1);
      expect(peer.callsTo('TransIn')[0]!.headers.host).toBe(`rm.test:${port}`);
    } finally {
      await transport.close();
      peer.reset();
    }
  });

  it('when an IP literal is denied, then it is refused before connecting', async () => {
    const transport = new HttpBranchTransport({ policy: new OutboundPolicy({ deny: '127.0.0.0/8' }) });
    try {
      const outcome = await transport.call(request(peer.url('TransIn')));
      expect(outcome.kind === 'error' && outcome.detail).toMatch(
        /127\.0\.0\.1 matches OUTBOUND_DENY entry '127.0.0.0\/8'/,
      );
      expect(peer.calls).toHaveLength(0);
    } finally {
      await transport.close();
    }
  });

  it('when an RM answers 302, then the redirect is an error outcome and its target is never called', async () => {
    const transport = new HttpBranchTransport({ policy: new OutboundPolicy() });
    try {
      const outcome = await transport.call(request(`${redirectorUrl}/TransIn`));
      expect(outcome).toEqual({ kind: 'error', detail: `HTTP 302: redirect to ${peer.url('Hit')} not followed` });
      // Live marker: the peer does answer calls made to it directly, and still saw nothing from the redirect.
      expect(await transport.call(request(peer.url('Direct')))).toEqual({ kind: 'success' });
      expect(peer.callsTo('Direct')).toHaveLength(1);
      expect(peer.callsTo('Hit')).toHaveLength(0);
    } finally {
      await transport.close();
      peer.reset();
    }
  });
});

describe('outbound policy at submit (TM API)', () => {
  const fx = useTmFixture({ kafkaBrokers: ['127.0.0.1:1'], kafkaTopicAllow: 'orders.*' });

  const expectRefused = async (gid: string, r: { status: number; body: Record<string, unknown> }, url: string) => {
    expect(r.status).toBe(422);
    expect(String(r.body.message)).toContain(`outbound URL refused: ${url}`);
    expect((await fx.dtm.query(gid)).transaction).toBeNull();
  };

  it.each([
    ['metadata', 'http://169.254.169.254/latest/meta-data/'],
    ['link-local v6', 'http://[fe80::1]:8081/x'],
    ['AWS metadata v6', 'http://[fd00:ec2::254]/latest'],
    ['GCP metadata', 'http://metadata.google.internal/computeMetadata/v1/'],
    ['IPv4-mapped', 'http://[::ffff:169.254.169.254]/latest'],
    ['IPv4-mapped hex', 'http://[::ffff:a9fe:a9fe]/latest'],
    ['unspecified v4', 'http://0.0.0.0:8081/x'],
    ['unspecified v6', 'http://[::]:8081/x'],
  ])(
    'when a saga step calls a %s address, then submit answers 422 naming it and writes nothing',
    async (_what, url) => {
      const gid = uniqueGid('ssrf');
      const r = await fx.dtm.post('/submit', sagaBody(gid, [{ action: fx.peer.url('TransOut'), compensate: url }]));
      await expectRefused(gid, r, url);
    },
  );

  it("when a step calls the TM's own API or its Redis, then submit answers 422 and writes nothing", async () => {
    const apiPort = new URL(fx.tm.url).port;
    for (const url of [
      `http://127.0.0.1:${apiPort}/api/dtmsvr/forceStop`,
      `http://localhost:${apiPort}/api/dtmsvr/forceStop`,
      `http://127.0.0.1:${new URL(fx.redis.url).port}/`,
    ]) {
      const gid = uniqueGid('own');
      await expectRefused(gid, await fx.dtm.post('/submit', sagaBody(gid, [{ action: url, compensate: '' }])), url);
    }
  });

  it('when a msg query_prepared, a tcc branch or a subscriber is refused, then 422 and nothing written', async () => {
    const meta = 'http://169.254.169.254/latest';
    const gid = uniqueGid('msg');
    const msg = {
      gid,
      trans_type: 'msg',
      steps: [{ action: fx.peer.url('TransIn') }],
      payloads: ['{}'],
      query_prepared: meta,
    };
    await expectRefused(gid, await fx.dtm.post('/prepare', msg), meta);

    const tcc = uniqueGid('tcc');
    expect((await fx.dtm.post('/prepare', { gid: tcc, trans_type: 'tcc' })).status).toBe(200);
    const reg = await fx.dtm.post('/registerBranch', {
      gid: tcc,
      trans_type: 'tcc',
      branch_id: '01',
      confirm: meta,
      cancel: fx.peer.url('Cancel'),
      data: '{}',
    });
    expect(reg.status).toBe(422);
    expect((await fx.dtm.query(tcc)).branches).toEqual([]);

    const sub = await fx.dtm.get(`/subscribe?topic=t-${gid}&url=${encodeURIComponent(meta)}&remark=x`);
    expect(sub.status).toBe(422);
    const viaTopic = await fx.dtm.post('/submit', { gid, trans_type: 'msg', steps: [{ action: `topic://t-${gid}` }] });
    expect(viaTopic.status).toBe(422);
    expect(String(viaTopic.body.message)).toMatch(/has no subscribers/);
  });

  it('when a JSON-RPC submit names a refused URL, then it gets -32602 naming it and nothing is written', async () => {
    const gid = uniqueGid('rpc');
    const url = 'http://[::ffff:a9fe:a9fe]/latest';
    const res = await fetch(`${fx.tm.url}/api/json-rpc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'submit',
        params: sagaBody(gid, [{ action: fx.peer.url('TransOut'), compensate: url }]),
      }),
    });
    const answer = (await res.json()) as { error: { code: number; message: string } | null };
    expect(answer.error?.code).toBe(-32602);
    expect(answer.error?.message).toContain(`outbound URL refused: ${url}`);
    expect((await fx.dtm.query(gid)).transaction).toBeNull();
  });

  it('when a kafka:// step names a topic outside KAFKA_TOPIC_ALLOW, then 422 and nothing written; a matching one is accepted', async () => {
    const gid = uniqueGid('kafka');
    const bad = { gid, trans_type: 'msg', steps: [{ action: 'kafka://payments' }], payloads: ['{}'] };
    const r = await fx.dtm.post('/prepare', bad);
    expect(r.status).toBe(422);
    expect(String(r.body.message)).toMatch(/kafka:\/\/payments: topic 'payments' matches no KAFKA_TOPIC_ALLOW pattern/);
    expect((await fx.dtm.query(gid)).transaction).toBeNull();
    const good = { gid, trans_type: 'msg', steps: [{ action: 'kafka://orders.v1' }], payloads: ['{}'] };
    expect((await fx.dtm.post('/prepare', good)).status).toBe(200);
    expect((await fx.dtm.query(gid)).transaction).toMatchObject({ status: 'prepared' });
  });

  it('when a step calls an ordinary RM on loopback, then it is accepted and called (RMs live there)', async () => {
    const gid = uniqueGid('ok');
    const r = await fx.dtm.post(
      '/submit',
      sagaBody(gid, [{ action: fx.peer.url('TransOut'), compensate: fx.peer.url('Undo') }]),
    );
    expect(r.status).toBe(200);
    await fx.dtm.waitFor(gid, 'succeed');
    expect(fx.peer.callsTo('TransOut')).toHaveLength(1);
  });
});

describe('outbound policy at connect time (TM with OUTBOUND_DENY=127.0.0.0/8,::1)', () => {
  const fx = useTmFixture({ outboundDeny: '127.0.0.0/8,::1' });

  it('when a name allowed at submit resolves to a denied address, then the call is refused at connect time and retried as an error', async () => {
    const gid = uniqueGid('rebind');
    const url = `http://localhost:${new URL(fx.peer.url('x')).port}/TransOut`;
    const literal = uniqueGid('literal');
    // The literal is refused at submit; the name only shows what it is once resolved.
    expect(
      (await fx.dtm.post('/submit', sagaBody(literal, [{ action: fx.peer.url('TransOut'), compensate: '' }]))).status,
    ).toBe(422);
    expect((await fx.dtm.post('/submit', sagaBody(gid, [{ action: url, compensate: '' }]))).status).toBe(200);
    const deadline = Date.now() + 20_000;
    let reason = '';
    while (Date.now() < deadline && reason === '') {
      const r = await fx.dtm.get(`/events?gid=${gid}`);
      const events = (r.body.events ?? []) as { type: string; reason?: string }[];
      reason = events.find((e) => e.type === 'BranchRetryScheduled')?.reason ?? '';
      if (reason === '') await new Promise((ok) => setTimeout(ok, 50));
    }
    expect(reason).toMatch(
      /outbound call to localhost:\d+ refused: localhost resolved to (127\.0\.0\.1|::1), which matches OUTBOUND_DENY/,
    );
    expect((await fx.dtm.query(gid)).transaction).toMatchObject({ status: 'submitted' });
    expect(fx.peer.calls).toHaveLength(0);
  });
});
