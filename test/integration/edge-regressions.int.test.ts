import { describe, expect, it } from 'vitest';
import { SECONDS } from '@dtm-ts/api';
import { sagaBody, uniqueGid, useTmFixture } from '../support/tm-harness';

/** Issue 11, "What we saw": each input that used to be accepted and then strand its transaction. */
const fx = useTmFixture();

const steps = (gid: string) => [{ action: fx.peer.url(`${gid}/a`), compensate: fx.peer.url(`${gid}/c`) }];
const streamLength = async (gid: string) => (await fx.tm.infra.log.read(gid)).events.length;

describe('inputs that used to strand a transaction are refused, and nothing is written', () => {
  const cases: [string, (gid: string) => string, number, RegExp][] = [
    [
      'a request_timeout no timer can hold (3000000 s)',
      (gid) => JSON.stringify(sagaBody(gid, steps(gid), { request_timeout: 3_000_000 })),
      422,
      /^request_timeout must be between 0 and 3600 seconds$/,
    ],
    [
      'a branch header value with CR/LF',
      (gid) => JSON.stringify(sagaBody(gid, steps(gid), { branch_headers: { 'x-a': 'v\r\nx-injected: 1' } })),
      422,
      /^branch_headers\.x-a has a value with a character other than printable ASCII/,
    ],
    [
      'a branch header name with a space',
      (gid) => JSON.stringify(sagaBody(gid, steps(gid), { branch_headers: { 'x a': 'v' } })),
      422,
      /^branch_headers\.x a is not a valid header name/,
    ],
    [
      'a transfer-encoding branch header',
      (gid) => JSON.stringify(sagaBody(gid, steps(gid), { branch_headers: { 'Transfer-Encoding': 'chunked' } })),
      422,
      /^branch_headers\.Transfer-Encoding is a header the TM does not forward/,
    ],
    [
      'a gid with a lone surrogate',
      (gid) => JSON.stringify(sagaBody(gid, steps(gid))).replace(`"gid":"${gid}"`, `"gid":"${gid}\\ud800"`),
      400,
      /^gid is not well-formed Unicode/,
    ],
    [
      'a workflow name with a lone surrogate',
      (gid) =>
        JSON.stringify({
          gid,
          trans_type: 'workflow',
          query_prepared: fx.peer.url(`${gid}/resume`),
          custom_data: '{"name":"wf\\ud800","data":""}',
        }),
      400,
      /^custom_data\.name is not well-formed Unicode/,
    ],
  ];
  for (const [what, body, status, message] of cases) {
    it(`when a submit has ${what}, then it gets ${status} naming the field and no stream exists`, async () => {
      const gid = uniqueGid('reg');
      const path = what.startsWith('a workflow') ? '/prepareWorkflow' : '/submit';
      const res = await fx.dtm.postRaw(path, body(gid));
      expect(res.status).toBe(status);
      expect(String(res.body.message)).toMatch(message);
      expect(await streamLength(gid)).toBe(0);
      expect(await streamLength(`${gid}\ud800`)).toBe(0);
      expect(fx.peer.calls.filter((c) => c.path.startsWith(gid))).toHaveLength(0);
    });
  }

  it('when the same saga comes with the longest call timeout and clean headers, then it runs and its RM sees the headers', async () => {
    const gid = uniqueGid('ok');
    const res = await fx.dtm.post(
      '/submit',
      sagaBody(gid, steps(gid), { request_timeout: SECONDS.request_timeout, branch_headers: { 'X-Tenant': 'a b\tc' } }),
    );
    expect(res.status).toBe(200);
    await fx.dtm.waitFor(gid, 'succeed');
    expect(fx.peer.callsTo(`${gid}/a`)[0]?.headers['x-tenant']).toBe('a b\tc');
  });
});
