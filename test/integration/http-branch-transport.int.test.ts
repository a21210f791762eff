import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signBranchCall } from '@dtm-ts/client';
import type { BranchRequest } from '@dtm-ts/ports';
import { HttpBranchTransport } from '../../shared/adapters/src/http-branch/http-branch-transport';
import { startBranchPeer } from '../peers/http-branch-peer';
import type { BranchPeer } from '../peers/http-branch-peer';

const request = (over: Partial<BranchRequest> = {}): BranchRequest => ({
  gid: 'gid-1',
  transType: 'saga',
  branchId: '01',
  op: 'action',
  url: '',
  data: '{"amount":30}',
  headers: {},
  timeoutMs: 3_000,
  ...over,
});

/** A port nobody listens on: bound, then released. */
const freePort = async (): Promise<number> => {
  const s = createServer();
  await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((ok) => s.close(() => ok()));
  return port;
};

const listen = async (server: Server): Promise<string> => {
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};

describe('HttpBranchTransport against a scripted RM', () => {
  let peer: BranchPeer;
  let transport: HttpBranchTransport;

  beforeAll(async () => {
    peer = await startBranchPeer();
    transport = new HttpBranchTransport();
  });
  afterEach(() => peer.reset());
  afterAll(async () => {
    await transport.close();
    await peer.close();
  });

  it('when the branch has data, then it POSTs the raw bytes with the DTM query, JSON type and branch headers', async () => {
    const outcome = await transport.call(
      request({ url: peer.url('TransOut'), gid: 'g 1&x=/é', headers: { 'X-Trace': 'abc' } }),
    );

    expect(outcome).toEqual({ kind: 'success' });
    const [call] = peer.callsTo('TransOut');
    expect(call).toMatchObject({
      method: 'POST',
      body: '{"amount":30}',
      query: { gid: 'g 1&x=/é', trans_type: 'saga', branch_id: '01', op: 'action' },
    });
    expect(call?.headers['content-type']).toBe('application/json');
    expect(call?.headers['x-trace']).toBe('abc');
  });

  it("when a gRPC transaction calls an http(s) branch, then the body is the payload's bytes as they are (DTM)", async () => {
    const bytes = Buffer.from([0x08, 0x1e, 0xff, 0x00]);
    const received: Buffer[] = [];
    const rm = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push(Buffer.concat(chunks));
        res.end('{}');
      });
    });
    const url = await listen(rm);
    try {
      const outcome = await transport.call(
        request({ url: `${url}/TransIn`, protocol: 'grpc', data: bytes.toString('base64') }),
      );
      expect(outcome).toEqual({ kind: 'success' });
      expect(received).toHaveLength(1);
      expect(received[0]!.equals(bytes)).toBe(true);
    } finally {
      await new Promise<void>((ok) => rm.close(() => ok()));
    }
  });

  it('when the branch has no data, then it GETs with the same query and no body', async () => {
    await transport.call(request({ url: peer.url('TransOutRevert'), op: 'compensate', data: '' }));

    const [call] = peer.callsTo('TransOutRevert');
    expect(call).toMatchObject({
      method: 'GET',
      body: '',
      query: { gid: 'gid-1', trans_type: 'saga', branch_id: '01', op: 'compensate' },
    });
  });

  it('when the url already has a query, then it is kept and ours is appended', async () => {
    await transport.call(request({ url: `${peer.url('withQuery')}?tenant=a%20b&x=1#frag` }));

    const [call] = peer.callsTo('withQuery');
    expect(call?.query).toEqual({
      tenant: 'a b',
      x: '1',
      gid: 'gid-1',
      trans_type: 'saga',
      branch_id: '01',
      op: 'action',
    });
  });

  it.each([
    [200, { kind: 'success' }],
    [409, { kind: 'failure', detail: '{"dtm_result":"FAILURE"}' }],
    [425, { kind: 'ongoing', detail: '{"dtm_result":"ONGOING"}' }],
    [500, { kind: 'error', detail: 'HTTP 500: {"message":"boom"}' }],
  ] as const)('when the RM answers %i, then the outcome is %o', async (status, expected) => {
    peer.script('status', [status]);
    expect(await transport.call(request({ url: peer.url('status') }))).toEqual(expected);
  });

  it('when scripted replies run out, then the last one repeats', async () => {
    peer.script('flaky', [500, 500, 200]);
    const kinds = [];
    for (let i = 0; i < 4; i++) kinds.push((await transport.call(request({ url: peer.url('flaky') }))).kind);
    expect(kinds).toEqual(['error', 'error', 'success', 'success']);
  });

  it('when the RM hangs, then the call is an error once the timeout has passed', async () => {
    peer.script('hang', ['hang']);
    const started = Date.now();

    const outcome = await transport.call(request({ url: peer.url('hang'), timeoutMs: 300 }));

    const elapsed = Date.now() - started;
    expect(outcome).toEqual({ kind: 'error', detail: 'timeout after 300 ms' });
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(2_000);
  });

  it('when the RM answers too slowly, then the call times out', async () => {
    peer.script('slow', [{ status: 200, delayMs: 1_000 }]);
    expect(await transport.call(request({ url: peer.url('slow'), timeoutMs: 300 }))).toEqual({
      kind: 'error',
      detail: 'timeout after 300 ms',
    });
  });

  it('when nothing listens, then the call is an error naming the refusal', async () => {
    const port = await freePort();
    const outcome = await transport.call(request({ url: `http://127.0.0.1:${port}/x` }));
    expect(outcome).toEqual({ kind: 'error', detail: `connect ECONNREFUSED 127.0.0.1:${port}` });
  });

  it('when the url is invalid or not http, then the call is an error and nothing throws', async () => {
    expect(await transport.call(request({ url: 'not a url' }))).toEqual({
      kind: 'error',
      detail: 'invalid url: not a url',
    });
    expect(await transport.call(request({ url: 'ftp://127.0.0.1/x' }))).toMatchObject({
      kind: 'error',
      detail: expect.stringContaining('unsupported protocol ftp:'),
    });
  });

  it('when the url is empty, then the branch succeeds without any call', async () => {
    expect(await transport.call(request({ url: '' }))).toEqual({ kind: 'success' });
    expect(peer.calls).toHaveLength(0);
  });

  it('when the RM sends 1 MiB, then only the cap is read and the next call still works', async () => {
    const single = new HttpBranchTransport({ connectionsPerOrigin: 1 });
    try {
      // FAILURE lies past the cap: seeing it would mean the whole body was read.
      peer.script('big', [{ status: 200, body: `${'x'.repeat(1024 * 1024)}FAILURE` }]);
      expect(await single.call(request({ url: peer.url('big') }))).toEqual({ kind: 'success' });
      expect(await single.call(request({ url: peer.url('after-big') }))).toEqual({ kind: 'success' });
      expect(peer.callsTo('after-big')).toHaveLength(1);
    } finally {
      await single.close();
    }
  });

  it('when 200 calls run at once, then all succeed', async () => {
    const outcomes = await Promise.all(
      // A generous timeout: under a loaded machine 200 calls on two cores can take seconds; this is about concurrency.
      Array.from({ length: 200 }, (_, i) =>
        transport.call(request({ url: peer.url('many'), branchId: String(i), timeoutMs: 30_000 })),
      ),
    );

    expect(outcomes.every((o) => o.kind === 'success')).toBe(true);
    expect(new Set(peer.callsTo('many').map((c) => c.query.branch_id)).size).toBe(200);
  });
});

describe('HttpBranchTransport with a signing key', () => {
  it("when a key is set, then every call carries the TM's signature over what was sent, never the client's", async () => {
    const peer = await startBranchPeer();
    const key = 'transport-signing-key-0123';
    const transport = new HttpBranchTransport({ signingKey: key, now: () => 1_733_120_000_000 });
    try {
      const url = `${peer.url('TransIn')}?tenant=a`;
      await transport.call(request({ url, headers: { 'DTM-Signature': 't=1,v1=forged', 'X-Trace': 'abc' } }));
      await transport.call(request({ url: peer.url('Confirm'), data: '' }));
      const [post] = peer.callsTo('TransIn');
      const path = '/TransIn?tenant=a&gid=gid-1&trans_type=saga&branch_id=01&op=action';
      expect(post!.headers['dtm-signature']).toBe(
        signBranchCall(key, { method: 'POST', path, body: '{"amount":30}' }, 1_733_120_000_000),
      );
      expect(post!.headers['x-trace']).toBe('abc');
      const [get] = peer.callsTo('Confirm');
      expect(get!.method).toBe('GET');
      expect(get!.headers['dtm-signature']).toBe(
        signBranchCall(
          key,
          { method: 'GET', path: '/Confirm?gid=gid-1&trans_type=saga&branch_id=01&op=action', body: '' },
          1_733_120_000_000,
        ),
      );
    } finally {
      await transport.close();
      await peer.close();
    }
  });

  it('when no key is set, then calls carry no signature (behaviour unchanged)', async () => {
    const peer = await startBranchPeer();
    const transport = new HttpBranchTransport();
    try {
      await transport.call(request({ url: peer.url('TransIn') }));
      expect(peer.callsTo('TransIn')[0]!.headers['dtm-signature']).toBeUndefined();
    } finally {
      await transport.close();
      await peer.close();
    }
  });
});

describe('HttpBranchTransport at the socket level', () => {
  it('when an answer is a little over the cap, then the rest is drained and the socket reused', async () => {
    let connections = 0;
    const server = createServer((req, res) => {
      req.resume();
      res.end(req.url?.startsWith('/big') ? `${'x'.repeat(100 * 1024)}FAILURE` : '{"dtm_result":"SUCCESS"}');
    }).on('connection', () => connections++);
    const base = await listen(server);
    const transport = new HttpBranchTransport({ connectionsPerOrigin: 1, maxBodyBytes: 64 * 1024 });
    try {
      expect(await transport.call(request({ url: `${base}/big` }))).toEqual({ kind: 'success' });
      expect(await transport.call(request({ url: `${base}/small` }))).toEqual({ kind: 'success' });
      expect(connections).toBe(1);
    } finally {
      await transport.close();
      server.closeAllConnections();
      server.close();
    }
  });

  it('when the headers come but the body stalls, then the timeout still ends the call', async () => {
    const server = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-length': '100' });
      res.write('{"dtm_result":');
    });
    const base = await listen(server);
    const transport = new HttpBranchTransport();
    try {
      expect(await transport.call(request({ url: `${base}/stall`, timeoutMs: 300 }))).toEqual({
        kind: 'error',
        detail: 'timeout after 300 ms',
      });
    } finally {
      await transport.close();
      server.closeAllConnections();
      server.close();
    }
  });

  it('when the RM drops the connection mid-answer, then the call is an error', async () => {
    const server = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-length': '100' });
      res.write('{"dtm_result":', () => res.destroy());
    });
    const base = await listen(server);
    const transport = new HttpBranchTransport();
    try {
      expect(await transport.call(request({ url: `${base}/drop` }))).toMatchObject({ kind: 'error' });
    } finally {
      await transport.close();
      server.close();
    }
  });
});
