import { describe, expect, it } from 'vitest';
import { Metadata } from '@grpc/grpc-js';
import { tracingOn } from '@dtm-ts/telemetry';
import { grpcCall, useGrpcTmFixture } from '../support/grpc-tm';
import { sagaBody, uniqueGid, useTmFixture } from '../support/tm-harness';

// No exporter: the TM makes no spans of its own, but passes the AP's trace context on as it came.
const fx = useTmFixture();
const grpc = useGrpcTmFixture();

const steps = (gid: string, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    action: fx.peer.url(`${gid}/a${i}`),
    compensate: fx.peer.url(`${gid}/c${i}`),
  }));

const post = (path: string, body: unknown, traceparent?: string) =>
  fetch(`${fx.tm.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(traceparent ? { traceparent } : {}) },
    body: JSON.stringify(body),
  });

const AP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('the trace context with tracing off', () => {
  it('is off in this file', () => {
    expect(tracingOn()).toBe(false);
  });

  it('when the AP sends a traceparent to /submit, then every branch call carries it as it came', async () => {
    const gid = uniqueGid('tp-http');
    fx.peer.script(`${gid}/a1`, [500, 200]);
    expect((await post('/api/dtmsvr/submit', sagaBody(gid, steps(gid, 2)), AP)).status).toBe(200);
    await fx.dtm.waitFor(gid, 'succeed');
    // The first action, the failed call of the second and its retry (from the queue, after the pass ended).
    const calls = [...fx.peer.callsTo(`${gid}/a0`), ...fx.peer.callsTo(`${gid}/a1`)];
    expect(calls).toHaveLength(3);
    expect(calls.map((c) => c.headers.traceparent)).toEqual([AP, AP, AP]);
  });

  it('when it sends it over JSON-RPC, then the branch calls carry it too', async () => {
    const gid = uniqueGid('tp-rpc');
    const res = await post(
      '/api/json-rpc',
      { jsonrpc: '2.0', id: 1, method: 'submit', params: sagaBody(gid, steps(gid, 1)) },
      AP,
    );
    expect(await res.json()).toMatchObject({ error: null });
    await fx.dtm.waitFor(gid, 'succeed');
    expect(fx.peer.callsTo(`${gid}/a0`)[0]!.headers.traceparent).toBe(AP);
  });

  it.each([
    ['not W3C', 'hello'],
    ['an all-zero trace id', '00-00000000000000000000000000000000-00f067aa0ba902b7-01'],
    ['an all-zero parent id', '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01'],
    ['upper case', '00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01'],
  ])('when the traceparent is %s, then it is not passed on', async (_what, traceparent) => {
    const gid = uniqueGid('tp-bad');
    expect((await post('/api/dtmsvr/submit', sagaBody(gid, steps(gid, 1)), traceparent)).status).toBe(200);
    await fx.dtm.waitFor(gid, 'succeed');
    expect(fx.peer.callsTo(`${gid}/a0`)[0]!.headers.traceparent).toBeUndefined();
  });

  it('when the AP sends none, then the branch calls carry none', async () => {
    const gid = uniqueGid('tp-none');
    expect((await post('/api/dtmsvr/submit', sagaBody(gid, steps(gid, 1)))).status).toBe(200);
    await fx.dtm.waitFor(gid, 'succeed');
    expect(fx.peer.callsTo(`${gid}/a0`)[0]!.headers.traceparent).toBeUndefined();
  });
});

describe('the trace context with tracing off, over gRPC', () => {
  it('when the AP sends a traceparent in the metadata, then the branch calls carry it as it came', async () => {
    const gid = uniqueGid('tp-grpc');
    const md = new Metadata();
    md.set('traceparent', AP);
    const action = grpc.peer.url(`${gid}/a0`);
    const { err } = await grpcCall(
      grpc.stub,
      'Submit',
      {
        Gid: gid,
        TransType: 'saga',
        Steps: JSON.stringify([{ action, compensate: '' }]),
        BinPayloads: [Buffer.from('p')],
      },
      md,
    );
    expect(err).toBeNull();
    await grpc.dtm.waitFor(gid, 'succeed');
    expect(grpc.peer.callsTo(`${gid}/a0`)[0]!.headers.traceparent).toBe(AP);
  });
});
