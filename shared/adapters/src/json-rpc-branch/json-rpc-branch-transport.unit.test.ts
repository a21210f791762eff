import { describe, expect, it } from 'vitest';
import type { BranchRequest } from '@dtm-ts/ports';
import type { HttpAnswer, HttpBranchTransport } from '../http-branch/http-branch-transport';
import { JsonRpcBranchTransport, jsonRpcMethodOf } from './json-rpc-branch-transport';

const request = (over: Partial<BranchRequest> = {}): BranchRequest => ({
  gid: 'g1',
  transType: 'saga',
  branchId: '01',
  op: 'action',
  url: 'http://rm/api/json-rpc?method=TransIn',
  data: '{"amount":30}',
  headers: {},
  timeoutMs: 3000,
  protocol: 'json-rpc',
  ...over,
});

/** A JSON-RPC transport over a fake HTTP transport that records what it was asked to post. */
const over = (answer: HttpAnswer) => {
  const posts: { url: string; body: string }[] = [];
  const http = {
    post: (url: string, body: string) => {
      posts.push({ url, body });
      return Promise.resolve(answer);
    },
  } as unknown as HttpBranchTransport;
  return { transport: new JsonRpcBranchTransport(http), posts };
};

describe('JSON-RPC branch transport', () => {
  it('reads the method from the url query', () => {
    expect(jsonRpcMethodOf('http://rm/rpc?x=1&method=TransIn#frag')).toBe('TransIn');
    expect(jsonRpcMethodOf('http://rm/rpc')).toBe('');
  });

  it('posts the envelope to the url as it is, the payload fields and the dtm fields as params', async () => {
    const { transport, posts } = over({ status: 200, body: '{"jsonrpc":"2.0","id":"1","result":{}}' });
    expect(await transport.call(request())).toEqual({ kind: 'success' });
    expect(posts[0]!.url).toBe('http://rm/api/json-rpc?method=TransIn');
    expect(JSON.parse(posts[0]!.body)).toEqual({
      jsonrpc: '2.0',
      method: 'TransIn',
      params: { amount: 30, gid: 'g1', trans_type: 'saga', branch_id: '01', op: 'action' },
      id: expect.any(String),
    });
  });

  it('when the payload is empty, then the params are the dtm fields alone', async () => {
    const { transport, posts } = over({ status: 200, body: '{"jsonrpc":"2.0","id":"1","result":{}}' });
    await transport.call(request({ data: '', op: 'msg', branchId: '00' }));
    expect(JSON.parse(posts[0]!.body).params).toEqual({ gid: 'g1', trans_type: 'saga', branch_id: '00', op: 'msg' });
  });

  it('when the payload is not a JSON object, then nothing is posted and the outcome is an error naming it', async () => {
    const { transport, posts } = over({ status: 200, body: '{}' });
    expect(await transport.call(request({ data: '[1]' }))).toMatchObject({
      kind: 'error',
      detail: expect.stringContaining('must be a JSON object'),
    });
    expect(posts).toEqual([]);
  });

  it('when the HTTP call fails, then the outcome is an error with its reason', async () => {
    const { transport } = over({ error: 'connect ECONNREFUSED 127.0.0.1:1' });
    expect(await transport.call(request())).toEqual({ kind: 'error', detail: 'connect ECONNREFUSED 127.0.0.1:1' });
  });
});
