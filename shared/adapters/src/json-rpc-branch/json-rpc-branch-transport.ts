import { randomUUID } from 'node:crypto';
import { classifyJsonRpc, type BranchOutcome } from '@dtm-ts/domain';
import type { BranchRequest, BranchTransport } from '@dtm-ts/ports';
import type { HttpBranchTransport } from '../http-branch/http-branch-transport';

/** The JSON-RPC method a branch url names (`?method=`), or '' when it names none. */
export const jsonRpcMethodOf = (url: string): string => {
  const q = url.indexOf('?');
  if (q < 0) return '';
  const hash = url.indexOf('#', q);
  return new URLSearchParams(url.slice(q + 1, hash < 0 ? undefined : hash)).get('method') ?? '';
};

/**
 * Calls the branches of a `json-rpc` transaction as DTM does (reference §3.2): POST to the url as it is
 * `{"jsonrpc":"2.0","method":<the url's ?method=>,"params":{…payload, gid, trans_type, branch_id, op},"id":…}`
 * through the HTTP transport's pool, then the HTTP rules, then the JSON-RPC error codes ({@link classifyJsonRpc}).
 */
export class JsonRpcBranchTransport implements BranchTransport {
  constructor(private readonly http: HttpBranchTransport) {}

  async call(req: BranchRequest): Promise<BranchOutcome> {
    if (req.url === '') return { kind: 'success' };
    let params: Record<string, unknown> = {};
    if (req.data !== '') {
      let payload: unknown;
      try {
        payload = JSON.parse(req.data);
      } catch {
        payload = undefined;
      }
      if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
        return { kind: 'error', detail: 'the payload of a JSON-RPC branch must be a JSON object (its params)' };
      }
      params = payload as Record<string, unknown>;
    }
    const body = JSON.stringify({
      jsonrpc: '2.0',
      method: jsonRpcMethodOf(req.url),
      params: { ...params, gid: req.gid, trans_type: req.transType, branch_id: req.branchId, op: req.op },
      id: randomUUID(),
    });
    const answer = await this.http.post(req.url, body, req);
    return 'error' in answer ? { kind: 'error', detail: answer.error } : classifyJsonRpc(answer.status, answer.body);
  }
}
