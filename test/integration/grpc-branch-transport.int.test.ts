import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import type { BranchRequest } from '@dtm-ts/ports';
import { freePort } from '@dtm-ts/testing';
import { connectToResolved, GrpcBranchTransport } from '../../shared/adapters/src/grpc-branch/grpc-branch-transport';
import { startGrpcBranchPeer, type GrpcBranchPeer } from '../peers/grpc-branch-peer';

const request = (peer: Pick<GrpcBranchPeer, 'url'>, over: Partial<BranchRequest> = {}): BranchRequest => ({
  gid: 'g-transport',
  transType: 'saga',
  branchId: '01',
  op: 'action',
  url: peer.url('TransIn'),
  data: Buffer.from([0x08, 0x1e, 0xff, 0x00]).toString('base64'),
  headers: {},
  timeoutMs: 3_000,
  protocol: 'grpc',
  ...over,
});

describe('GrpcBranchTransport against a grpc-js RM over HTTP/2 on loopback', () => {
  let peer: GrpcBranchPeer;
  let transport: GrpcBranchTransport;

  beforeAll(async () => {
    peer = await startGrpcBranchPeer();
    transport = new GrpcBranchTransport({ dtmAddress: '127.0.0.1:36790' });
  });
  afterAll(async () => {
    await transport.close();
    await peer.close();
  });

  it('when a branch is called, then the RM gets the payload bytes, the dtm metadata and the branch headers', async () => {
    const gid = 'g-metadata';
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const outcome = await transport.call(
      request(peer, { gid, headers: { 'X-Tenant': 'acme', traceparent }, branchId: '02', op: 'compensate' }),
    );
    expect(outcome).toEqual({ kind: 'success' });
    const [call] = peer.callsTo(gid, 'TransIn');
    expect(call!.body.equals(Buffer.from([0x08, 0x1e, 0xff, 0x00]))).toBe(true);
    expect(call!.metadata).toMatchObject({
      'dtm-gid': gid,
      'dtm-trans_type': 'saga',
      'dtm-branch_id': '02',
      'dtm-op': 'compensate',
      'dtm-dtm': '127.0.0.1:36790',
      'x-tenant': 'acme',
      traceparent,
    });
  });

  it('when the transaction is not gRPC, then its text payload is sent as its UTF-8 bytes', async () => {
    const gid = 'g-text';
    await transport.call(request(peer, { gid, protocol: 'http', data: '{"who":"Zoë"}' }));
    expect(peer.callsTo(gid, 'TransIn')[0]!.body.toString('utf8')).toBe('{"who":"Zoë"}');
  });

  it('maps every status to its outcome (OK, ABORTED, legacy ABORTED ONGOING, FAILED_PRECONDITION, others)', async () => {
    const cases: [string, number, string, Record<string, unknown>][] = [
      ['ok', status.OK, '', { kind: 'success' }],
      ['aborted', status.ABORTED, 'insufficient balance', { kind: 'failure', detail: 'insufficient balance' }],
      ['legacy', status.ABORTED, 'ONGOING', { kind: 'ongoing' }],
      ['precondition', status.FAILED_PRECONDITION, 'not yet', { kind: 'ongoing', detail: 'not yet' }],
      ['unavailable', status.UNAVAILABLE, 'down', { kind: 'error', detail: 'gRPC UNAVAILABLE: down' }],
      ['internal', status.INTERNAL, 'boom', { kind: 'error', detail: 'gRPC INTERNAL: boom' }],
      ['unknown', status.UNKNOWN, 'what', { kind: 'error', detail: 'gRPC UNKNOWN: what' }],
    ];
    for (const [gid, code, details, expected] of cases) {
      peer.script(gid, 'TransIn', [{ code, details }]);
      expect(await transport.call(request(peer, { gid })), gid).toMatchObject(expected);
    }
  });

  it('when the RM does not answer within the request timeout, then the call ends DEADLINE_EXCEEDED, an error', async () => {
    const gid = 'g-hang';
    peer.script(gid, 'TransIn', ['hang']);
    const t0 = Date.now();
    const outcome = await transport.call(request(peer, { gid, timeoutMs: 300 }));
    const took = Date.now() - t0;
    expect(outcome).toMatchObject({ kind: 'error', detail: expect.stringContaining('DEADLINE_EXCEEDED') });
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(2_500);
  });

  it('when the method does not exist, then UNIMPLEMENTED is an error to retry', async () => {
    const outcome = await transport.call(request(peer, { url: `${peer.address}/busi.Busi/Nope` }));
    expect(outcome).toMatchObject({ kind: 'error', detail: expect.stringContaining('UNIMPLEMENTED') });
  });

  it('when the url is not a gRPC url, then the call is an error naming it, and nothing is sent', async () => {
    const before = peer.calls.length;
    expect(await transport.call(request(peer, { url: 'localhost/busi.Busi/TransIn' }))).toMatchObject({
      kind: 'error',
      detail: expect.stringContaining('not a gRPC branch url'),
    });
    expect(peer.calls.length).toBe(before);
  });

  it('when a workflow is resumed, then the body is DTM workflow.WorkflowData with the input in field 1', async () => {
    const gid = 'g-workflow';
    const input = Buffer.from('{"amount":30}');
    await transport.call(
      request(peer, {
        gid,
        transType: 'workflow',
        branchId: '00',
        op: 'wf-name',
        url: peer.url('/workflow.Workflow/Execute'),
        data: input.toString('base64'),
      }),
    );
    const [call] = peer.callsTo(gid, '/workflow.Workflow/Execute');
    expect([...call!.body]).toEqual([0x0a, input.length, ...input]);
    expect(call!.metadata['dtm-op']).toBe('wf-name');
  });
});

describe('GrpcBranchTransport channels', () => {
  it('when several calls go to one target, then they share one channel and one connection; an idle one is closed', async () => {
    const peer = await startGrpcBranchPeer();
    const transport = new GrpcBranchTransport({ idleMs: 300 });
    try {
      await Promise.all([1, 2, 3, 4].map((i) => transport.call(request(peer, { gid: 'g-reuse', branchId: `0${i}` }))));
      await transport.call(request(peer, { gid: 'g-reuse', branchId: '05' }));
      const peers = new Set(peer.callsTo('g-reuse', 'TransIn').map((c) => c.peer));
      expect(peer.callsTo('g-reuse', 'TransIn')).toHaveLength(5);
      expect(peers.size).toBe(1);
      expect(transport.openChannels).toBe(1);
      await expect.poll(() => transport.openChannels, { timeout: 5_000 }).toBe(0);
      // The next call opens a new channel, on a new connection.
      expect(await transport.call(request(peer, { gid: 'g-reuse', branchId: '06' }))).toEqual({ kind: 'success' });
      expect(peer.callsTo('g-reuse', 'TransIn')[5]!.peer).not.toBe([...peers][0]);
    } finally {
      await transport.close();
      await peer.close();
    }
  });

  it('when nothing listens, then the call is UNAVAILABLE; once the RM is up there, a later call gets through', async () => {
    const port = await freePort();
    const transport = new GrpcBranchTransport();
    const url = `127.0.0.1:${port}/busi.Busi/TransIn`;
    const req = request({ url: () => url }, { gid: 'g-down' });
    try {
      expect(await transport.call(req)).toMatchObject({
        kind: 'error',
        detail: expect.stringContaining('UNAVAILABLE'),
      });
      const peer = await startGrpcBranchPeer(port);
      try {
        // The channel reconnects within about a second (its backoff is capped for that); the TM's retries come later.
        await expect
          .poll(async () => (await transport.call(req)).kind, { timeout: 5_000, interval: 200 })
          .toBe('success');
        expect(peer.callsTo('g-down', 'TransIn').length).toBeGreaterThanOrEqual(1);
      } finally {
        await peer.close();
      }
    } finally {
      await transport.close();
    }
  });

  it('when the connect-time check refuses a target, then the call is an error with its reason and no channel is kept', async () => {
    const peer = await startGrpcBranchPeer();
    const seen: string[] = [];
    const transport = new GrpcBranchTransport({
      connectTo: (u) => {
        seen.push(`${u.host}:${u.port}`);
        return Promise.resolve({ refused: `outbound policy: ${u.host} is denied` });
      },
    });
    try {
      expect(await transport.call(request(peer, { gid: 'g-refused' }))).toEqual({
        kind: 'error',
        detail: 'outbound policy: 127.0.0.1 is denied',
      });
      expect(seen).toEqual([peer.address]);
      expect(transport.openChannels).toBe(0);
      expect(peer.callsTo('g-refused', 'TransIn')).toHaveLength(0);
    } finally {
      await transport.close();
      await peer.close();
    }
  });

  it('when the connect-time check names another address, then the channel dials it', async () => {
    const peer = await startGrpcBranchPeer();
    const transport = new GrpcBranchTransport({
      connectTo: () => Promise.resolve({ target: `ipv4:127.0.0.1:${peer.port}` }),
    });
    try {
      const url = `rm.invalid:${peer.port}/busi.Busi/TransIn`;
      expect(await transport.call(request(peer, { gid: 'g-resolved', url }))).toEqual({ kind: 'success' });
      expect(peer.callsTo('g-resolved', 'TransIn')).toHaveLength(1);
    } finally {
      await transport.close();
      await peer.close();
    }
  });

  it('when connecting through a resolver (an outbound policy), then the checked address is dialled, or the call refused', async () => {
    const peer = await startGrpcBranchPeer();
    const asked: string[] = [];
    const transport = new GrpcBranchTransport({
      connectTo: connectToResolved((host, port) => {
        asked.push(`${host} ${port}`);
        if (host === 'metadata.internal') return Promise.reject(new Error('outbound: metadata.internal is denied'));
        return Promise.resolve([{ address: '127.0.0.1', family: 4 }]);
      }),
    });
    try {
      const url = `rm.example:${peer.port}/busi.Busi/TransIn`;
      expect(await transport.call(request(peer, { gid: 'g-policy', url }))).toEqual({ kind: 'success' });
      expect(peer.callsTo('g-policy', 'TransIn')).toHaveLength(1);
      const denied = `metadata.internal:${peer.port}/busi.Busi/TransIn`;
      expect(await transport.call(request(peer, { gid: 'g-policy', url: denied }))).toEqual({
        kind: 'error',
        detail: 'outbound: metadata.internal is denied',
      });
      expect(asked).toEqual([`rm.example ${peer.port}`, `metadata.internal ${peer.port}`]);
      expect(peer.callsTo('g-policy', 'TransIn')).toHaveLength(1);
    } finally {
      await transport.close();
      await peer.close();
    }
  });

  it('when the transport is closed, then later calls are errors', async () => {
    const peer = await startGrpcBranchPeer();
    const transport = new GrpcBranchTransport();
    await transport.close();
    expect(await transport.call(request(peer))).toMatchObject({
      kind: 'error',
      detail: expect.stringContaining('closed'),
    });
    await peer.close();
  });
});
