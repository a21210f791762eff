import type { Request, Response } from 'express';
import { errorAnswer } from './dtm-router';
import type { DtmService } from './dtm-service';

/**
 * JSON-RPC 2.0 at `/api/json-rpc` (DTM's `api_json_rpc.go`): always HTTP 200 with
 * `{jsonrpc, id, error, result}`. Codes: -32700 parse error, -32600 bad request, -32601 unknown
 * method, -32901 FAILURE (409), -32602 bad params (a 4xx here; DTM answers -32603), -32603 other.
 */
export const jsonRpcHandler = (svc: DtmService) => {
  const methods: Record<string, (params: unknown) => unknown> = {
    newGid: () => svc.newGid(),
    prepare: (p) => svc.prepare(p),
    submit: (p) => svc.submit(p),
    abort: (p) => svc.abort(p),
    registerBranch: (p) => svc.registerBranch(p),
  };
  return async (req: Request, res: Response): Promise<void> => {
    const body = req.body as { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown } | undefined;
    const id = body?.id ?? null;
    const reply = (error: { code: number; message: string } | null, result: unknown = null) =>
      res.status(200).json({ jsonrpc: '2.0', id, error, result });
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      return void reply({ code: -32600, message: 'request must be a JSON object' });
    if (body.jsonrpc !== '2.0' || id === null || id === '') {
      return void reply({ code: -32600, message: 'jsonrpc must be "2.0" and id must be set' });
    }
    const fn = typeof body.method === 'string' ? methods[body.method] : undefined;
    if (!fn) return void reply({ code: -32601, message: `method not found: ${String(body.method)}` });
    try {
      reply(null, await fn(body.params));
    } catch (err) {
      const a = errorAnswer(err);
      const code = a.status === 409 ? -32901 : a.status === 425 ? -32902 : a.status < 500 ? -32602 : -32603;
      reply({ code, message: String(a.body.message) });
    }
  };
};
