import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import express, { type Request, type Response } from 'express';
import { describe, expect, it } from 'vitest';
import { signBranchCall } from './branch-signature';
import { DtmBadRequest, DtmFailure, DtmOngoing } from './errors';
import { branchInfo, keepRawBody, replyError, rmHandler, verifyBranchSignature } from './express';

/** Just enough of an express Response to see what was answered. */
const fakeRes = () => {
  const sent: { status?: number; body?: unknown } = {};
  const res = {
    headersSent: false,
    status(code: number) {
      sent.status = code;
      return res;
    },
    json(body: unknown) {
      sent.body = body;
      res.headersSent = true;
      return res;
    },
  };
  return { res: res as unknown as Response, sent };
};

describe('RM answers', () => {
  it.each([
    [new DtmFailure('short of money'), 409, { dtm_result: 'FAILURE', message: 'short of money' }],
    [new DtmOngoing('later'), 425, { dtm_result: 'ONGOING', message: 'later' }],
    [new DtmBadRequest('no gid'), 400, { message: 'no gid' }],
    // A plain error mentioning FAILURE must stay a retryable 500, not read as a business failure.
    [new Error('upstream said FAILURE / ONGOING'), 500, { message: 'upstream said Failure / Ongoing' }],
  ])('when a handler throws %o, then it answers %i', (err, status, body) => {
    const { res, sent } = fakeRes();
    replyError(res, err);
    expect(sent).toEqual({ status, body });
  });

  it('when a wrapped handler resolves, then it answers 200 SUCCESS', async () => {
    const { res, sent } = fakeRes();
    rmHandler(async () => undefined)({} as Request, res, () => undefined);
    await new Promise((r) => setImmediate(r));
    expect(sent).toEqual({ status: 200, body: { dtm_result: 'SUCCESS' } });
  });

  it('when a branch request is parsed, then gid, trans_type, branch_id and op are required', () => {
    expect(branchInfo({ gid: 'g', trans_type: 'saga', branch_id: '01', op: 'action' })).toEqual({
      gid: 'g',
      transType: 'saga',
      branchId: '01',
      op: 'action',
      dtm: '',
      phase2Url: '',
    });
    expect(() => branchInfo({ gid: 'g' })).toThrow(DtmBadRequest);
  });
});

describe('verifyBranchSignature middleware', () => {
  const KEY = 'rm-test-key-0123456789';
  const serve = async (app: express.Express): Promise<{ url: string; close: () => Promise<void> }> => {
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}`,
      close: () => new Promise<void>((ok) => server.close(() => ok())),
    };
  };
  const call = (url: string, path: string, body: string, signature: string) =>
    fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'dtm-signature': signature },
      body,
    });

  it('when mounted before any body parser, then it reads the body itself, verifies it and hands on the parsed JSON', async () => {
    const seen: unknown[] = [];
    const app = express();
    app.use(verifyBranchSignature({ key: KEY }));
    app.post('/TransIn', (req, res) => {
      seen.push(req.body);
      res.json({ dtm_result: 'SUCCESS' });
    });
    const rm = await serve(app);
    try {
      const path = '/TransIn?gid=g1&trans_type=saga&branch_id=01&op=action';
      const body = '{"amount":30}';
      const ok = await call(rm.url, path, body, signBranchCall(KEY, { method: 'POST', path, body }, Date.now()));
      expect(ok.status).toBe(200);
      expect(seen).toEqual([{ amount: 30 }]);
      const forged = await call(
        rm.url,
        path,
        body,
        signBranchCall('x'.repeat(24), { method: 'POST', path, body }, Date.now()),
      );
      expect(forged.status).toBe(401);
      expect(((await forged.json()) as { message: string }).message).toMatch(/does not match/);
      expect(seen).toHaveLength(1);
      // A call with no data comes as a GET without a body, signed over an empty body: it passes the verifier (and
      // finds no GET route here: 404); its replay does not.
      const get = '/TransIn?gid=g1&trans_type=tcc&branch_id=01&op=confirm';
      const signature = signBranchCall(KEY, { method: 'GET', path: get, body: '' }, Date.now());
      expect((await fetch(`${rm.url}${get}`, { method: 'GET', headers: { 'dtm-signature': signature } })).status).toBe(
        404,
      );
      expect((await fetch(`${rm.url}${get}`, { method: 'GET', headers: { 'dtm-signature': signature } })).status).toBe(
        401,
      );
    } finally {
      await rm.close();
    }
  });

  it('when mounted after express.json with keepRawBody, then it verifies the kept bytes; without it, it says how to mount it', async () => {
    const app = express();
    app.use('/kept', express.json({ verify: keepRawBody }), verifyBranchSignature({ key: KEY }));
    app.use('/lost', express.json(), verifyBranchSignature({ key: KEY }));
    app.post(/.*/, (req, res) => {
      res.json(req.body);
    });
    const rm = await serve(app);
    try {
      const body = '{ "amount" : 30 }'; // spacing JSON.stringify would not reproduce: only the raw bytes verify
      const sign = (path: string) => signBranchCall(KEY, { method: 'POST', path, body }, Date.now());
      const kept = await call(rm.url, '/kept/x?op=action', body, sign('/kept/x?op=action'));
      expect(kept.status).toBe(200);
      expect(await kept.json()).toEqual({ amount: 30 });
      const lost = await call(rm.url, '/lost/x?op=action', body, sign('/lost/x?op=action'));
      expect(lost.status).toBe(500);
      expect(((await lost.json()) as { message: string }).message).toMatch(/keepRawBody/);
    } finally {
      await rm.close();
    }
  });
});
