import { describe, expect, it } from 'vitest';
import { BadRequest } from '../http/bad-request';
import {
  outboundUrlsOf,
  parseAbort,
  parseGidBody,
  parseGlobalRequest,
  parseRegisterBranch,
} from '../http/validate-global';
import {
  allQuerySchema,
  jsonRpcEnvelopeSchema,
  registrationRows,
  resetCronTimeQuerySchema,
  subscribeQuerySchema,
} from './schemas';
import { parseInput, SECONDS } from './wire';

const limits = { maxBranches: 5, kafka: false, protocols: ['http', 'grpc', 'json-rpc'] as const };
const saga = (extra: Record<string, unknown> = {}) => ({
  gid: 'g1',
  trans_type: 'saga',
  steps: [{ action: 'http://rm/a', compensate: 'http://rm/c' }],
  payloads: ['{"n":1}'],
  ...extra,
});

/** The refusal a parse throws: its status and message. */
const refusal = (fn: () => unknown): { status: number; message: string } => {
  try {
    fn();
  } catch (err) {
    if (err instanceof BadRequest) return { status: err.status, message: err.message };
    throw err;
  }
  throw new Error('expected a refusal, but the input was accepted');
};
const refusedGlobal = (body: unknown) => refusal(() => parseGlobalRequest(body, limits));

describe('global request (prepare, submit, prepareWorkflow)', () => {
  it('when a saga is well-formed, then it gives its definition and DTM rows', () => {
    const { definition, branches } = parseGlobalRequest(saga({ request_timeout: 5 }), limits);
    expect(definition).toMatchObject({ gid: 'g1', transType: 'saga', protocol: 'http', payloads: ['{"n":1}'] });
    expect(definition.options.requestTimeout).toBe(5);
    expect(branches.map((b) => `${b.branchId}/${b.op}`)).toEqual(['01/compensate', '01/action']);
  });

  it('when keys come in any case and options are null, then they read as DTM reads them', () => {
    const { definition } = parseGlobalRequest({ GID: 'g\r\n;2', Trans_Type: 'saga', retry_interval: null }, limits);
    expect(definition.gid).toBe('g2');
    expect(definition.options.retryInterval).toBe(0);
  });

  it.each([
    ['request_timeout', 3_000_000, `between 0 and ${SECONDS.request_timeout}`],
    ['timeout_to_fail', -1, 'between 0'],
    ['retry_interval', 1e308, 'between 0'],
    ['retry_limit', 1.5, 'must be an integer'],
  ])('when %s is %s, then it is refused naming the field', (field, value, text) => {
    const r = refusedGlobal(saga({ [field]: value }));
    expect(r.message).toContain(field);
    expect(r.message).toContain(text);
    expect(r.status).toBeGreaterThanOrEqual(400);
  });

  it('when a call timeout is the most a timer can hold, then it fits one', () => {
    expect(SECONDS.request_timeout * 1000).toBeLessThanOrEqual(2 ** 31 - 1);
  });

  it.each([
    [{ 'x-a': 'line\r\nbreak' }, 'branch_headers.x-a'],
    [{ 'x-a': 'nul\0' }, 'branch_headers.x-a'],
    [{ 'x-a': 'euro €' }, 'branch_headers.x-a'],
    [{ 'a name': 'v' }, 'branch_headers.a name'],
    [{ 'Transfer-Encoding': 'chunked' }, 'branch_headers.Transfer-Encoding'],
    [{ connection: 'close' }, 'branch_headers.connection'],
    [{ 'Proxy-Authorization': 'x' }, 'branch_headers.Proxy-Authorization'],
    [{ host: 'evil' }, 'branch_headers.host'],
    [{ 'content-length': '1' }, 'branch_headers.content-length'],
    [{ te: 'trailers' }, 'branch_headers.te'],
    [{ 'X-A': '1', 'x-a': '2' }, 'branch_headers.x-a'],
    [Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`h${i}`, 'v'])), 'branch_headers has 65 headers'],
    [{ a: 'x'.repeat(9000) }, 'branch_headers are 9001 bytes'],
  ])('when branch_headers break a rule (%#), then they are refused with 422 naming them', (headers, field) => {
    const r = refusedGlobal(saga({ branch_headers: headers }));
    expect(r.status).toBe(422);
    expect(r.message).toContain(field);
  });

  it('when branch_headers are clean tokens and values, then they are kept as given', () => {
    const headers = { Authorization: 'Bearer x', 'x-trace_id.v2': 'a\tb', "!#$%&'*+-.^_`|~": 'v' };
    expect(parseGlobalRequest(saga({ branch_headers: headers }), limits).definition.options.branchHeaders).toEqual(
      headers,
    );
  });

  it('when a gid or any string holds a lone surrogate, then it is refused as broken text', () => {
    expect(refusedGlobal(saga({ gid: 'a\ud800' }))).toEqual({
      status: 400,
      message: 'gid is not well-formed Unicode (it holds a lone surrogate)',
    });
    expect(refusedGlobal(saga({ payloads: ['\udc00'] })).message).toMatch(/^payloads\[0\] is not well-formed/);
    expect(refusedGlobal(saga({ ['\ud800k']: 1 })).message).toMatch(/a key of the request is not well-formed/);
    expect(parseGlobalRequest(saga({ gid: 'ok-😀' }), limits).definition.gid).toBe('ok-😀');
  });

  it('when a gid has control characters, is too long or starts with $, then it is refused', () => {
    expect(refusedGlobal(saga({ gid: 'a\tb' })).message).toMatch(/^gid has a control character/);
    expect(refusedGlobal(saga({ gid: 'a\u0085b' })).message).toMatch(/^gid has a control character/);
    expect(refusedGlobal(saga({ gid: 'x'.repeat(129) })).message).toBe('gid is longer than 128 characters');
    expect(refusedGlobal(saga({ gid: '$all' })).status).toBe(422);
    expect(refusedGlobal(saga({ gid: ';\n' }))).toEqual({ status: 400, message: 'gid is required' });
  });

  it('when a URL has user info, another scheme or does not parse, then it is refused naming the step', () => {
    const url = (action: string) => refusedGlobal(saga({ steps: [{ action, compensate: '' }] }));
    expect(url('http://user:pw@rm/a').message).toMatch(/^steps\[0\]\.action may not carry a user name or password/);
    expect(url('file:///etc/passwd').message).toMatch(/must be an http\(s\) URL/);
    expect(url('http://[::1').message).toMatch(/is not a valid URL/);
    expect(url(`http://rm/${'a'.repeat(5000)}`).message).toMatch(/longer than 4096/);
  });

  it('when the body nests deeper than the bound, then it is refused without walking it all', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(refusedGlobal(saga({ extra: deep })).message).toMatch(/nested deeper than 32 levels/);
  });

  it('when a prototype key is sent, then it neither pollutes nor leaks into the definition', () => {
    const body = JSON.parse('{"gid":"g1","trans_type":"saga","__proto__":{"retry_limit":7},"constructor":1}');
    expect(parseGlobalRequest(body, limits).definition.options.retryLimit).toBe(0);
    const headers = JSON.parse('{"__proto__":"x"}');
    expect(refusedGlobal(saga({ branch_headers: headers })).message).toMatch(/branch_headers.__proto__/);
    expect(({} as Record<string, unknown>).retry_limit).toBeUndefined();
  });

  it('when the workflow name holds a lone surrogate through a JSON escape, then it is refused', () => {
    const custom = '{"name":"wf\\ud800","data":""}';
    const r = refusedGlobal({ gid: 'w1', trans_type: 'workflow', query_prepared: 'http://ap/cb', custom_data: custom });
    expect(r.message).toMatch(/custom_data\.name is not well-formed/);
    const ctl = refusedGlobal({ gid: 'w1', trans_type: 'workflow', custom_data: '{"name":"a\\u0001"}' });
    expect(ctl.message).toMatch(/custom_data\.name has a control character/);
  });

  it('when the protocol is grpc, then URLs are gRPC targets (or http(s)) and payloads are stored as base64 bytes', () => {
    const body = {
      gid: 'g1',
      trans_type: 'saga',
      protocol: 'grpc',
      steps: [{ action: 'localhost:50051/busi.Busi/TransOut', compensate: 'dns:///rm:1/busi.Busi/Revert' }],
      payloads: ['hé'],
    };
    const { definition } = parseGlobalRequest(body, limits);
    expect(definition.protocol).toBe('grpc');
    expect(definition.payloads).toEqual([Buffer.from('hé').toString('base64')]);
    const bin = parseGlobalRequest({ ...body, payloads: undefined, bin_payloads: ['AAEC'] }, limits);
    expect(bin.definition.payloads).toEqual(['AAEC']);
    expect(refusedGlobal({ ...body, steps: [{ action: 'rm/busi.Busi/TransOut' }] }).message).toMatch(/gRPC target/);
    expect(refusedGlobal({ ...body, branch_headers: { 'x~up': 'v' } }).message).toMatch(/not a gRPC metadata key/);
    expect(refusedGlobal({ ...body, bin_payloads: ['AA'] }).message).toMatch(/payloads or bin_payloads, not both/);
  });

  it('when an http transaction carries bin_payloads, then UTF-8 bytes become its text and other bytes are refused', () => {
    const ok = parseGlobalRequest(
      saga({ payloads: undefined, bin_payloads: [Buffer.from('{"a":1}').toString('base64')] }),
      limits,
    );
    expect(ok.definition.payloads).toEqual(['{"a":1}']);
    expect(refusedGlobal(saga({ payloads: undefined, bin_payloads: ['/w=='] })).message).toMatch(/not UTF-8/);
    expect(refusedGlobal(saga({ payloads: undefined, bin_payloads: ['%%'] })).message).toMatch(
      /bin_payloads\[0\] must be base64/,
    );
  });

  it('when a grpc transaction has an http(s) step, then it is kept with its bytes (sent as the body, as DTM)', () => {
    const grpcHttp = (bin: string) => saga({ protocol: 'grpc', payloads: undefined, bin_payloads: [bin] });
    const ok = parseGlobalRequest(grpcHttp(Buffer.from('{"a":1}').toString('base64')), limits);
    expect(ok.definition.steps[0]).toMatchObject({ action: 'http://rm/a' });
    expect(parseGlobalRequest(grpcHttp('/w=='), limits).definition.payloads).toEqual(['/w==']);
    expect(refusedGlobal(saga({ protocol: 'grpc', steps: [{ action: 'ftp://rm/a' }] })).message).toMatch(
      /^steps\[0\]\.action must be a gRPC target host:port\/package\.Service\/Method: ftp:\/\/rm\/a$/,
    );
    expect(refusedGlobal(saga({ protocol: 'grpc', steps: [{ action: 'http://u:p@rm/a' }] })).message).toMatch(
      /^steps\[0\]\.action must be a gRPC target .* \(or an http\(s\) URL: may not carry a user name/,
    );
  });

  it('when a json-rpc step has a payload that is not a JSON object, then it is refused naming the step', () => {
    const jsonRpc = (payloads: string[]) => saga({ protocol: 'json-rpc', payloads });
    expect(parseGlobalRequest(jsonRpc(['{"amount":30}']), limits).definition.payloads).toEqual(['{"amount":30}']);
    expect(parseGlobalRequest(jsonRpc(['']), limits).definition.payloads).toEqual(['']);
    for (const bad of ['[1]', '"text"', 'not json', 'null']) {
      expect(refusedGlobal(jsonRpc([bad]))).toEqual({
        status: 422,
        message: 'payloads[0] must be a JSON object: it is the params of a json-rpc call',
      });
    }
  });

  it('when the TM does not serve a protocol, then a transaction of it is refused', () => {
    const r = refusal(() => parseGlobalRequest(saga({ protocol: 'grpc' }), { maxBranches: 5 }));
    expect(r).toEqual({ status: 422, message: "protocol 'grpc' is not served by this TM (it calls http)" });
  });

  it('when the body is not an object or a field has the wrong type, then it is a 400', () => {
    expect(refusedGlobal([1])).toEqual({ status: 400, message: 'request body must be a JSON object' });
    expect(refusedGlobal('x')).toEqual({ status: 400, message: 'request body must be a JSON object' });
    expect(refusedGlobal(saga({ wait_result: 'yes' }))).toEqual({
      status: 400,
      message: 'wait_result must be true or false',
    });
    expect(refusedGlobal(saga({ steps: [{ action: 1 }] }))).toEqual({
      status: 400,
      message: 'steps[0].action must be a string',
    });
    expect(refusedGlobal(saga({ payloads: [null] })).message).toBe('payloads[0] must be a string');
  });
});

describe('other bodies', () => {
  it('abort: gid, a known trans_type, a bounded reason', () => {
    expect(parseAbort({ gid: 'g', trans_type: 'tcc', rollback_reason: 'no' })).toEqual({
      gid: 'g',
      transType: 'tcc',
      reason: 'no',
    });
    expect(refusal(() => parseAbort({ gid: 'g', trans_type: 'tcc', rollback_reason: 'x'.repeat(5000) })).message).toBe(
      'rollback_reason is longer than 4096 characters',
    );
  });

  it('forceStop/resetNextCronTime: a gid', () => {
    expect(parseGidBody({ gid: 'g' })).toBe('g');
    expect(refusal(() => parseGidBody({}))).toEqual({ status: 400, message: 'gid is required' });
  });

  it('registerBranch: strings only, a clean branch id and op, rows by protocol', () => {
    const tcc = parseRegisterBranch({
      gid: 'g',
      trans_type: 'tcc',
      branch_id: '01',
      data: 'd',
      confirm: 'http://rm/confirm',
      cancel: 'http://rm/cancel',
    });
    expect(registrationRows(tcc, 'http').map((r) => [r.op, r.url, r.data])).toEqual([
      ['cancel', 'http://rm/cancel', 'd'],
      ['confirm', 'http://rm/confirm', 'd'],
    ]);
    // A grpc transaction may register http(s) branches, as DTM calls them over HTTP with the bytes as the body.
    expect(registrationRows(tcc, 'grpc').map((r) => [r.op, r.url, r.data])).toEqual([
      ['cancel', 'http://rm/cancel', 'ZA=='],
      ['confirm', 'http://rm/confirm', 'ZA=='],
    ]);
    expect(refusal(() => registrationRows({ ...tcc, urls: { ...tcc.urls, confirm: 'rm/C' } }, 'grpc')).message).toMatch(
      /^confirm must be a gRPC target/,
    );
    expect(registrationRows({ ...tcc, binData: '/w==' }, 'grpc').map((r) => r.data)).toEqual(['/w==', '/w==']);
    const grpc = parseRegisterBranch({
      gid: 'g',
      trans_type: 'tcc',
      branch_id: '01',
      bin_data: 'AAE=',
      confirm: 'rm:1/p.S/C',
    });
    expect(registrationRows(grpc, 'grpc').map((r) => r.data)).toEqual(['AAE=', 'AAE=']);
    expect(refusal(() => parseRegisterBranch({ gid: 'g', trans_type: 'tcc', branch_id: 1 })).message).toBe(
      'branch_id must be a string',
    );
    expect(refusal(() => parseRegisterBranch({ gid: 'g', trans_type: 'tcc', branch_id: '01', x: 2 })).message).toMatch(
      /^x must be a string \(registerBranch takes string values only\)/,
    );
    expect(refusal(() => parseRegisterBranch({ gid: 'g', trans_type: 'tcc', branch_id: '0 1' })).status).toBe(422);
    const wf = { gid: 'g', trans_type: 'workflow', branch_id: '01', status: 'succeed' };
    expect(refusal(() => parseRegisterBranch({ ...wf, op: 'a\nb' })).message).toBe('op has a control character');
    expect(refusal(() => parseRegisterBranch({ ...wf, op: 'x'.repeat(129) })).message).toBe(
      'op is longer than 128 characters',
    );
    const xa = parseRegisterBranch({ gid: 'g', trans_type: 'xa', branch_id: '01', url: 'http://u:p@rm/xa' });
    expect(refusal(() => registrationRows(xa, 'http')).message).toMatch(/^url may not carry a user name/);
  });
});

describe('query strings', () => {
  it('all: bounded integers, a repeated parameter is refused', () => {
    expect(parseInput(allQuerySchema, {})).toMatchObject({ gid: '', limit: 100 });
    expect(refusal(() => parseInput(allQuerySchema, { limit: '1e3' })).message).toBe(
      'limit must be an integer from 1 to 1000',
    );
    expect(refusal(() => parseInput(allQuerySchema, { gid: ['a', 'b'] })).message).toBe('gid must be given once');
    expect(refusal(() => parseInput(allQuerySchema, { createTimeStart: '-5' })).status).toBe(400);
    expect(refusal(() => parseInput(allQuerySchema, { position: 'p'.repeat(300) })).status).toBe(422);
  });

  it('resetCronTime: timeout defaults and is bounded', () => {
    expect(parseInput(resetCronTimeQuerySchema(105), {})).toEqual({ timeoutS: 105, limit: 100 });
    expect(refusal(() => parseInput(resetCronTimeQuerySchema(105), { timeout: '99999999999' })).status).toBe(400);
  });

  it('subscribe: a topic name and an http(s) URL', () => {
    expect(parseInput(subscribeQuerySchema, { topic: 't', url: 'http://rm/x' })).toEqual({
      topic: 't',
      url: 'http://rm/x',
      remark: '',
    });
    expect(refusal(() => parseInput(subscribeQuerySchema, { topic: 't', url: 'gopher://x' })).message).toMatch(
      /^url must be an http\(s\) URL/,
    );
    expect(refusal(() => parseInput(subscribeQuerySchema, { topic: 'a b', url: 'http://x' })).status).toBe(422);
    // A gRPC RM subscribes with DTM's gRPC url.
    expect(parseInput(subscribeQuerySchema, { topic: 't', url: 'rm:58081/busi.Busi/TransIn' }).url).toBe(
      'rm:58081/busi.Busi/TransIn',
    );
  });
});

describe('JSON-RPC envelope', () => {
  it('needs version 2.0, a non-empty id and a method', () => {
    expect(parseInput(jsonRpcEnvelopeSchema, { jsonrpc: '2.0', id: 1, method: 'newGid' })).toMatchObject({ id: 1 });
    expect(refusal(() => parseInput(jsonRpcEnvelopeSchema, { jsonrpc: '2.0', id: '', method: 'x' })).message).toMatch(
      /^id must be/,
    );
  });
});

describe('outbound URLs of a request', () => {
  it('lists every URL the TM would call or produce to, once', () => {
    const parsed = parseGlobalRequest(
      {
        gid: 'm',
        trans_type: 'msg',
        steps: [{ action: 'http://a/1' }, { action: 'http://a/1' }, { action: 'kafka://orders' }],
        query_prepared: 'http://ap/q',
      },
      { ...limits, kafka: true },
    );
    expect(outboundUrlsOf(parsed).map((u) => u.url)).toEqual(['http://a/1', 'kafka://orders', 'http://ap/q']);
  });
});
