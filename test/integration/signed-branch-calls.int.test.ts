import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmHandler, signBranchCall, verifyBranchSignature } from '@dtm-ts/client';
import { startRedis, type RedisProcess } from '@dtm-ts/testing';
import type { RunningTm } from '@dtm-ts/tm';
import { dtmClient, sagaBody, startTestTm, uniqueGid, type DtmClient } from '../support/tm-harness';

const KEY = 'integration-signing-key-0123456789';

/** What the RM saw of one call the verifier let through: enough to replay or alter it. */
interface Seen {
  readonly method: string;
  readonly path: string;
  readonly body: string;
  readonly signature: string;
}

describe('signed branch calls: TM (BRANCH_SIGNING_KEY) → express RM (verifyBranchSignature)', () => {
  let redis: RedisProcess;
  let tm: RunningTm;
  let dtm: DtmClient;
  let rm: Server;
  let rmUrl: string;
  const accepted: Seen[] = [];
  const refused: { path: string; status: number }[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    tm = await startTestTm(redis.url, { branchSigningKey: KEY });
    dtm = dtmClient(tm.url);
    const app = express();
    // Record what reaches the verifier and what it answered, before it runs.
    app.use((req, res, next) => {
      res.on('finish', () => {
        if (res.statusCode === 401) refused.push({ path: req.originalUrl, status: res.statusCode });
      });
      next();
    });
    app.use(verifyBranchSignature({ key: KEY }));
    app.use(
      rmHandler(async (req) => {
        accepted.push({
          method: req.method,
          path: req.originalUrl,
          body: req.body === undefined ? '' : JSON.stringify(req.body),
          signature: req.get('dtm-signature') ?? '',
        });
        if (req.path === '/Refuse') return { dtm_result: 'FAILURE' };
        return undefined;
      }),
    );
    rm = app.listen(0, '127.0.0.1');
    await once(rm, 'listening');
    rmUrl = `http://127.0.0.1:${(rm.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await tm?.close();
    rm?.closeAllConnections();
    await new Promise<void>((ok) => (rm ? rm.close(() => ok()) : ok()));
    await redis?.stop();
  });

  it("when the TM runs a saga, then the RM's verifier accepts every real call (actions, and compensations after a refusal)", async () => {
    const gid = uniqueGid('signed');
    const body = sagaBody(gid, [
      { action: `${rmUrl}/TransOut`, compensate: `${rmUrl}/TransOutRevert` },
      { action: `${rmUrl}/Refuse`, compensate: `${rmUrl}/RefuseRevert` },
    ]);
    expect((await dtm.post('/submit', body)).status).toBe(200);
    await dtm.waitFor(gid, 'failed');
    const mine = accepted.filter((s) => s.path.includes(gid));
    expect(mine.map((s) => s.path.split('?')[0])).toEqual(['/TransOut', '/Refuse', '/RefuseRevert', '/TransOutRevert']);
    for (const s of mine) expect(s.signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(refused.filter((r) => r.path.includes(gid))).toEqual([]);
  });

  it('when a real call is replayed, altered or forged, then the RM refuses it with 401', async () => {
    const gid = uniqueGid('replay');
    expect((await dtm.post('/submit', sagaBody(gid, [{ action: `${rmUrl}/TransIn`, compensate: '' }]))).status).toBe(
      200,
    );
    await dtm.waitFor(gid, 'succeed');
    const real = accepted.find((s) => s.path.includes(gid));
    expect(real).toBeDefined();
    const send = (path: string, body: string, signature: string, method = real!.method) =>
      fetch(`${rmUrl}${path}`, {
        method,
        headers: { 'content-type': 'application/json', 'dtm-signature': signature },
        body: method === 'GET' ? undefined : body,
      });
    const answers = {
      replayed: await send(real!.path, real!.body, real!.signature),
      alteredBody: await send(real!.path, real!.body.replace('30', '3000'), real!.signature),
      alteredUrl: await send(real!.path.replace('op=action', 'op=compensate'), real!.body, real!.signature),
      alteredMethod: await send(real!.path, '', real!.signature, 'GET'),
      forged: await send(
        real!.path,
        real!.body,
        signBranchCall('not-the-tm-key-0123456789', { method: 'POST', path: real!.path, body: real!.body }, Date.now()),
      ),
      unsigned: await fetch(`${rmUrl}${real!.path}`, { method: 'POST', body: real!.body }),
    };
    for (const [what, res] of Object.entries(answers))
      expect({ what, status: res.status }).toEqual({ what, status: 401 });
    expect(await answers.replayed.json()).toEqual({
      message: 'unsigned or badly signed branch call: signature already used (replay)',
    });
    expect(accepted.filter((s) => s.path.includes(gid))).toHaveLength(1);
  });
});
