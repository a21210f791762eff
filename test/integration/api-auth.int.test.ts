import { describe, expect, it } from 'vitest';
import { DtmTransportError, newGid, query, Saga, setTmAuthorization } from '@dtm-ts/client';
import { parseApiTokens, parseTrustedNets } from '@dtm-ts/config';
import { sagaBody, uniqueGid, useTmFixture, type TmFixture } from '../support/tm-harness';

const CLIENT = 'client-token-for-tests-0001';
const ADMIN = 'admin-token-for-tests-00001';
const tokens = parseApiTokens(`${CLIENT}:client,${ADMIN}:admin`);

const call = async (
  fx: TmFixture,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown } = {},
): Promise<{ status: number; body: Record<string, unknown>; challenge: string | null }> => {
  const res = await fetch(`${fx.tm.url}${path}`, {
    method,
    headers: {
      ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
      ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
  });
  const text = await res.text();
  return {
    status: res.status,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    challenge: res.headers.get('www-authenticate'),
  };
};
const streamLength = async (fx: TmFixture, gid: string) => (await fx.tm.infra.log.read(gid)).events.length;
const saga = (fx: TmFixture, gid: string) =>
  sagaBody(gid, [{ action: fx.peer.url(`${gid}/a`), compensate: fx.peer.url(`${gid}/c`) }]);

describe('with tokens and no trusted network', () => {
  const fx = useTmFixture({ apiTokens: tokens });

  it('when a request has no token or a wrong one, then it gets 401 with a Bearer challenge and nothing is written', async () => {
    for (const token of [undefined, 'wrong-token-for-tests-00001']) {
      const gid = uniqueGid('noauth');
      const res = await call(fx, 'POST', '/api/dtmsvr/submit', { token, body: saga(fx, gid) });
      expect(res.status).toBe(401);
      expect(res.challenge).toMatch(/^Bearer realm="dtm-ts"/);
      expect(String(res.body.message)).not.toContain('wrong-token');
      expect(await streamLength(fx, gid)).toBe(0);
      const rpc = await call(fx, 'POST', '/api/json-rpc', {
        token,
        body: { jsonrpc: '2.0', id: 1, method: 'submit', params: saga(fx, gid) },
      });
      expect(rpc.status).toBe(401);
      expect(await streamLength(fx, gid)).toBe(0);
    }
  });

  it('when a client token submits, then the saga runs; when it asks for an admin endpoint, then 403 and nothing changes', async () => {
    const gid = uniqueGid('client');
    fx.peer.script(`${gid}/a`, [425]);
    expect((await call(fx, 'POST', '/api/dtmsvr/submit', { token: CLIENT, body: saga(fx, gid) })).status).toBe(200);
    expect((await call(fx, 'GET', `/api/dtmsvr/query?gid=${gid}`, { token: CLIENT })).status).toBe(200);
    const before = await streamLength(fx, gid);
    const stop = await call(fx, 'POST', '/api/dtmsvr/forceStop', { token: CLIENT, body: { gid } });
    expect(stop.status).toBe(403);
    expect(stop.challenge).toMatch(/insufficient_scope/);
    for (const path of ['/api/dtmsvr/all', `/api/dtmsvr/events?gid=${gid}`, '/api/dtmsvr/resetCronTime']) {
      expect((await call(fx, 'GET', path, { token: CLIENT })).status, path).toBe(403);
    }
    expect((await call(fx, 'DELETE', '/api/dtmsvr/topic/t1', { token: CLIENT })).status).toBe(403);
    const rpc = await call(fx, 'POST', '/api/json-rpc', {
      token: CLIENT,
      body: { jsonrpc: '2.0', id: 1, method: 'newGid' },
    });
    expect(rpc.body.result).toMatchObject({ dtm_result: 'SUCCESS' });
    // Its pass is still under way: forceStop did nothing (the live marker is the query above).
    const q = await call(fx, 'GET', `/api/dtmsvr/query?gid=${gid}`, { token: CLIENT });
    expect((q.body.transaction as { status: string }).status).toBe('submitted');
    expect(await streamLength(fx, gid)).toBeGreaterThanOrEqual(before);
    expect((await fx.tm.infra.log.read(gid)).events.map((e) => e.type)).not.toContain('TransactionFailed');
    // The admin token may.
    expect((await call(fx, 'POST', '/api/dtmsvr/forceStop', { token: ADMIN, body: { gid } })).status).toBe(200);
    expect((await call(fx, 'GET', '/api/dtmsvr/all?limit=1', { token: ADMIN })).status).toBe(200);
    expect(
      (await call(fx, 'POST', '/api/dtmsvr/submit', { token: ADMIN, body: saga(fx, uniqueGid('adm')) })).status,
    ).toBe(200);
  });

  it('when nobody authenticates, then ping and metrics still answer (probes and Prometheus)', async () => {
    expect((await call(fx, 'GET', '/api/ping')).body).toEqual({ msg: 'pong' });
    expect((await fetch(`${fx.tm.url}/api/metrics`)).status).toBe(200);
    expect((await call(fx, 'GET', '/api/dtmsvr/nothing-here')).status).toBe(401);
  });

  it('when the SDK is given the client token with setTmAuthorization, then its newGid, submit and query pass; without it they get 401', async () => {
    const dtm = `${fx.tm.url}/api/dtmsvr`;
    const gid = uniqueGid('sdk');
    const saga = () => new Saga(dtm, gid).add(fx.peer.url(`${gid}/a`), fx.peer.url(`${gid}/c`), { n: 1 });
    await expect(saga().submit()).rejects.toThrow(DtmTransportError);
    await expect(saga().submit()).rejects.toThrow(/HTTP 401/);
    expect(await streamLength(fx, gid)).toBe(0);
    setTmAuthorization(`${dtm}/`, `Bearer ${CLIENT}`);
    try {
      expect(await newGid(dtm)).not.toBe('');
      await saga().submit();
      expect((await query(dtm, gid)).transaction?.gid).toBe(gid);
    } finally {
      setTmAuthorization(dtm, undefined);
    }
    await expect(query(dtm, gid)).rejects.toThrow(/HTTP 401/);
  });

  it('when a browser opens the console without a token, then the page loads, and its data needs the admin token', async () => {
    const page = await fetch(`${fx.tm.url}/tx/${encodeURIComponent('some/gid')}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect((await fetch(`${fx.tm.url}/console/app.js`)).status).toBe(200);
    expect((await call(fx, 'GET', '/api/console/counts')).status).toBe(401);
    expect((await call(fx, 'GET', '/api/console/counts', { token: CLIENT })).status).toBe(403);
    expect((await call(fx, 'GET', '/api/console/counts', { token: ADMIN })).status).toBe(200);
  });
});

describe('with a trusted network (loopback here) for unchanged DTM SDKs', () => {
  const fx = useTmFixture({ apiTokens: tokens, apiTrustedNets: parseTrustedNets('127.0.0.0/8,::1') });

  it('when a trusted peer calls the AP endpoints without a token, then they work; admin still needs the admin token', async () => {
    const gid = uniqueGid('trusted');
    expect((await call(fx, 'POST', '/api/dtmsvr/submit', { body: saga(fx, gid) })).status).toBe(200);
    await fx.dtm.waitFor(gid, 'succeed');
    const stop = await call(fx, 'POST', '/api/dtmsvr/forceStop', { body: { gid } });
    expect(stop.status).toBe(401);
    expect(stop.challenge).toMatch(/scope="admin"/);
    expect((await call(fx, 'GET', '/api/dtmsvr/all?limit=1', { token: CLIENT })).status).toBe(403);
    expect((await call(fx, 'GET', '/api/dtmsvr/all?limit=1', { token: ADMIN })).status).toBe(200);
  });
});
