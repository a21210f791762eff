import type { Request, Response } from 'express';
import { jsonRpcEnvelopeSchema } from '../edge/schemas';
import { parseInput } from '../edge/wire';
import { BadRequest } from './bad-request';
import { errorAnswer, traceparentOf } from './dtm-router';
import type { DtmService } from './dtm-service';

/**
 * JSON-RPC 2.0 at `/api/json-rpc` (DTM's `api_json_rpc.go`): always HTTP 200 with
 * `{jsonrpc, id, error, result}`. Codes: -32700 parse error, -32600 bad request, -32601 unknown
 * method, -32901 FAILURE (409), -32602 bad params (a 4xx here; DTM answers -32603), -32603 other.
 * The TM never answers ONGOING, so -32902 (an RM's answer) does not occur here.
 */
export const jsonRpcHandler = (svc: DtmService) => {
  const methods: Record<string, (params: unknown, traceparent?: string) => unknown> = {
    newGid: () => svc.newGid(),
    prepare: (p, tp) => svc.prepare(p, tp),
    submit: (p, tp) => svc.submit(p, tp),
    abort: (p) => svc.abort(p),
    registerBranch: (p) => svc.registerBranch(p),
  };
  return async (req: Request, res: Response): Promise<void> => {
    const raw: unknown = req.body;
    const rawId = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as { id?: unknown }).id : null;
    // Echo the id only when it is one JSON-RPC allows; anything else answers with id null.
    const echo = typeof rawId === 'string' || typeof rawId === 'number' ? rawId : null;
    const reply = (id: unknown, error: { code: number; message: string } | null, result: unknown = null) =>
      res.status(200).json({ jsonrpc: '2.0', id, error, result });
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      return void reply(null, { code: -32600, message: 'request must be a JSON object' });
    }
    let envelope;
    try {
      envelope = parseInput(jsonRpcEnvelopeSchema, raw);
    } catch (err) {
      if (!(err instanceof BadRequest)) throw err;
      return void reply(echo, { code: -32600, message: err.message });
    }
    const fn = Object.hasOwn(methods, envelope.method) ? methods[envelope.method] : undefined;
    if (!fn) return void reply(envelope.id, { code: -32601, message: `method not found: ${envelope.method}` });
    try {
      reply(envelope.id, null, await fn(envelope.params, traceparentOf(req)));
    } catch (err) {
      const a = errorAnswer(err);
      const code = a.status === 409 ? -32901 : a.status < 500 ? -32602 : -32603;
      reply(envelope.id, { code, message: String(a.body.message) });
    }
  };
};
