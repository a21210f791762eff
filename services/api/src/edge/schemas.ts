import { z } from 'zod';
import {
  branchRowsOf,
  isJsonObject,
  kafkaTopicOf,
  PROTOCOLS,
  TOPIC_SCHEME,
  TRANS_TYPES,
  type BranchDef,
  type Protocol,
  type TransDefinition,
  type TransType,
} from '@dtm-ts/domain';
import { BadRequest } from '../http/bad-request';
import { msgDelay, sagaOrdering, workflowCustomData } from './custom-data';
import { branchHeadersProblem } from './headers';
import {
  base64,
  BASE64,
  body,
  BOUNDS,
  gid,
  grpcUrlProblem,
  hasControl,
  httpUrlProblem,
  ident,
  optBool,
  optSeconds,
  optText,
  refuse,
  SECONDS,
  stringMap,
  text,
  utf8Of,
} from './wire';

/**
 * One schema per endpoint, whatever the wire (HTTP body or query string, JSON-RPC params, gRPC
 * messages mapped to the same bodies). Each turns the request into what the service decides on,
 * or refuses it with a 4xx naming the field, before anything is written.
 */

/** What the running TM can do, which shapes what a request may ask for. */
export interface Limits {
  readonly maxBranches: number;
  /** KAFKA_BROKERS is set: msg steps may name `kafka://<topic>`. */
  readonly kafka?: boolean;
  /** Branch protocols the TM's transports call (default: http only). */
  readonly protocols?: readonly Protocol[];
}

/** Names of topics (`topic://<name>` steps, subscribe, unsubscribe, delete). */
export const TOPIC_NAME = /^[A-Za-z0-9_.:-]{1,128}$/;

const transType = () =>
  text()
    .refine((s) => s !== '', { error: 'is required', params: { status: 400 } })
    .max(BOUNDS.filter, { error: `is longer than ${BOUNDS.filter} characters` })
    .refine((t) => TRANS_TYPES.includes(t), {
      error: (i) => `is unknown: '${String(i.input).slice(0, BOUNDS.filter)}' (saga, tcc, xa, msg or workflow)`,
    })
    .transform((t) => t as TransType);

const protocol = () =>
  optText(16).refine((p) => p === '' || (PROTOCOLS as readonly string[]).includes(p), {
    error: (i) => `'${String(i.input)}' is not supported (http, grpc or json-rpc)`,
  });

const stringArray = () => z.preprocess((v) => v ?? [], z.array(text(), { error: 'must be an array of strings' }));

/**
 * Where a branch URL goes: an http(s) URL (http, json-rpc), or in a grpc transaction a gRPC target or an http(s)
 * URL (DTM calls those over HTTP with the payload bytes as the body); empty = nothing to call.
 */
export const branchUrlProblem = (url: string, protocol: Protocol): string | null => {
  if (url === '') return null;
  if (protocol !== 'grpc') return httpUrlProblem(url);
  const grpc = grpcUrlProblem(url);
  if (grpc === null || /^https?:\/\//i.test(url) === false) return grpc;
  const http = httpUrlProblem(url);
  return http === null ? null : `${grpc} (or an http(s) URL: ${http})`;
};

const globalShape = z.object({
  gid: gid(),
  trans_type: transType(),
  protocol: protocol(),
  steps: z.preprocess((v) => v ?? [], z.array(stringMap(), { error: 'must be an array' })),
  payloads: stringArray(),
  bin_payloads: z.preprocess((v) => v ?? [], z.array(base64(), { error: 'must be an array of base64 strings' })),
  custom_data: optText(Number.MAX_SAFE_INTEGER),
  query_prepared: optText(BOUNDS.url),
  timeout_to_fail: optSeconds(SECONDS.timeout_to_fail),
  request_timeout: optSeconds(SECONDS.request_timeout),
  retry_interval: optSeconds(SECONDS.retry_interval),
  retry_limit: optSeconds(SECONDS.retry_limit),
  branch_headers: stringMap(),
  wait_result: optBool(),
  concurrent: optBool(),
  req_extra: stringMap(),
});
type GlobalWire = z.output<typeof globalShape>;

/** A step's URL, by mode: msg may name `topic://<name>` or (with Kafka) `kafka://<topic>`. */
const checkStepUrl = (url: string, field: string, w: GlobalWire, p: Protocol, limits: Limits): void => {
  if (w.trans_type === 'msg' && url.startsWith(TOPIC_SCHEME)) {
    const topic = url.slice(TOPIC_SCHEME.length);
    if (topic === '') throw new BadRequest(`${field} names no topic`, 422);
    if (!TOPIC_NAME.test(topic)) throw new BadRequest(`${field}: '${topic.slice(0, 200)}' is not a topic name`, 422);
    return;
  }
  const kafka = w.trans_type === 'msg' ? kafkaTopicOf(url) : null;
  if (kafka !== null) {
    if (!limits.kafka) {
      throw new BadRequest(`${field}: kafka:// delivery needs KAFKA_BROKERS, which this TM does not have`, 422);
    }
    if (typeof kafka !== 'string') {
      throw new BadRequest(
        `${field}: '${kafka.invalid.slice(0, 300)}' is not a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -)`,
        422,
      );
    }
    return;
  }
  const problem = branchUrlProblem(url, p);
  if (problem) throw new BadRequest(`${field} ${problem}`, 422);
};

/** The payload of each step as stored: text for http and json-rpc, base64 of the bytes for grpc. */
const payloadsOf = (w: GlobalWire, p: Protocol): string[] => {
  const n = w.steps.length;
  if (w.payloads.length > 0 && w.bin_payloads.length > 0) {
    throw new BadRequest('give payloads or bin_payloads, not both', 422);
  }
  for (const [field, list] of [
    ['payloads', w.payloads],
    ['bin_payloads', w.bin_payloads],
  ] as const) {
    if (list.length > n) throw new BadRequest(`${field} has ${list.length} entries for ${n} steps`, 422);
  }
  return w.steps.map((s, i) => {
    const bin = w.bin_payloads[i];
    if (bin !== undefined) {
      if (p === 'grpc') return bin;
      const text = utf8Of(bin);
      if (text === null) throw new BadRequest(`bin_payloads[${i}] is not UTF-8 text, as an ${p} body must be`, 422);
      return text;
    }
    const payload = w.payloads[i] ?? s.data ?? '';
    // A json-rpc step sends its payload as the call's params: refuse what could never be sent, not retry it forever.
    if (p === 'json-rpc' && payload !== '' && !isJsonObject(payload)) {
      throw new BadRequest(`payloads[${i}] must be a JSON object: it is the params of a json-rpc call`, 422);
    }
    return p === 'grpc' ? Buffer.from(payload, 'utf8').toString('base64') : payload;
  });
};

const toDefinition = (w: GlobalWire, limits: Limits): TransDefinition => {
  const p: Protocol = w.protocol === '' ? 'http' : (w.protocol as Protocol);
  if (!(limits.protocols ?? ['http']).includes(p)) {
    throw new BadRequest(
      `protocol '${p}' is not served by this TM (it calls ${(limits.protocols ?? ['http']).join(', ')})`,
      422,
    );
  }
  const t = w.trans_type;
  // tcc, xa and workflow carry no steps: their branches arrive through registerBranch.
  const stepped = t === 'saga' || t === 'msg';
  const steps = stepped ? w.steps : [];
  if (steps.length > limits.maxBranches) {
    throw new BadRequest(`too many steps: ${steps.length} > ${limits.maxBranches}`, 422);
  }
  steps.forEach((s, i) => {
    if (s.action === undefined) throw new BadRequest(`steps[${i}].action is required`);
    checkStepUrl(s.action, `steps[${i}].action`, w, p, limits);
    const problem = branchUrlProblem(s.compensate ?? '', p);
    if (problem) throw new BadRequest(`steps[${i}].compensate ${problem}`, 422);
  });
  const payloads = stepped ? payloadsOf({ ...w, steps }, p) : [];
  if (t === 'msg' || t === 'workflow') {
    const problem = branchUrlProblem(w.query_prepared, p);
    if (problem) throw new BadRequest(`query_prepared ${problem}`, 422);
  }
  const headers = branchHeadersProblem(w.branch_headers, p);
  if (headers) {
    const field = headers.key === '' ? 'branch_headers' : `branch_headers.${headers.key.slice(0, 100)}`;
    throw new BadRequest(`${field} ${headers.message}`, 422);
  }
  const workflow = t === 'workflow' ? workflowCustomData(w.custom_data, p) : undefined;
  if (t === 'workflow') checkReqExtra(w.req_extra);
  return {
    gid: w.gid,
    transType: t,
    protocol: p,
    steps,
    payloads,
    customData: w.custom_data,
    queryPrepared: w.query_prepared,
    options: {
      timeoutToFail: w.timeout_to_fail,
      requestTimeout: w.request_timeout,
      retryInterval: w.retry_interval,
      retryLimit: w.retry_limit,
      branchHeaders: w.branch_headers,
      waitResult: w.wait_result,
    },
    ordering:
      t === 'saga'
        ? sagaOrdering(w.custom_data, steps.length)
        : { concurrent: t === 'msg' && w.concurrent, orders: {} },
    delayS: t === 'msg' ? msgDelay(w.custom_data) : 0,
    ...(workflow ? { workflow } : {}),
    ...(t === 'workflow' && Object.keys(w.req_extra).length > 0 ? { reqExtra: w.req_extra } : {}),
  };
};

/** A workflow submit's `req_extra`: `status` succeed/failed, a bounded `rollback_reason`, a base64 `result`. */
const checkReqExtra = (x: Readonly<Record<string, string>>): void => {
  const { status, rollback_reason: reason, result } = x;
  if (status !== undefined && status !== 'succeed' && status !== 'failed') {
    throw new BadRequest(`req_extra.status must be succeed or failed, not '${status.slice(0, 20)}'`, 422);
  }
  if (reason !== undefined && reason.length > BOUNDS.reason) {
    throw new BadRequest(`req_extra.rollback_reason is longer than ${BOUNDS.reason} characters`, 422);
  }
  if (result !== undefined && !BASE64.test(result)) {
    throw new BadRequest('req_extra.result must be base64 text', 422);
  }
};

/**
 * `prepare`, `submit`, `prepareWorkflow`: DTM's global transaction JSON (reference §2.1) → its
 * definition and the branch rows it stores (a `topic://` row is expanded by the service).
 */
export const globalRequestSchema = (limits: Limits) =>
  body(
    globalShape.transform((w): { definition: TransDefinition; branches: BranchDef[] } => {
      const definition = toDefinition(w, limits);
      return { definition, branches: branchRowsOf(definition) };
    }),
  );

/** `abort`: `{gid, trans_type, rollback_reason?}`. */
export const abortSchema = body(
  z
    .object({ gid: gid(), trans_type: transType(), rollback_reason: optText(BOUNDS.reason) })
    .transform((b) => ({ gid: b.gid, transType: b.trans_type, reason: b.rollback_reason })),
);

/** `forceStop`, `resetNextCronTime`: `{gid}`. */
export const gidBodySchema = body(z.object({ gid: gid() }).transform((b) => b.gid));

const branchId = () =>
  ident(BOUNDS.branchId, 'a branch id').regex(/^[A-Za-z0-9_.-]+$/, {
    error: (i) => `'${String(i.input)}' has characters other than letters, digits, _ . -`,
  });

/** A registration before the transaction's protocol is known: the body's text and/or base64 bytes. */
export interface Registration {
  readonly gid: string;
  readonly transType: TransType;
  readonly branchId: string;
  readonly kind: 'tcc' | 'xa' | 'workflow';
  readonly urls: { readonly [op: string]: string };
  readonly data: string;
  readonly binData?: string;
  readonly op?: string;
  readonly status?: 'succeed' | 'failed' | 'prepared';
}

/**
 * `registerBranch` (and its aliases): a flat object of strings, as DTM's binder requires. tcc
 * `{confirm,cancel}`, xa `{url}`, workflow `{op,status}`; `data` is text, `bin_data` base64 bytes.
 */
export const registerBranchSchema = body(
  z
    .object({
      gid: gid(),
      trans_type: transType(),
      branch_id: branchId(),
      data: optText(Number.MAX_SAFE_INTEGER),
      bin_data: base64().optional(),
      confirm: optText(BOUNDS.url),
      cancel: optText(BOUNDS.url),
      url: optText(BOUNDS.url),
      op: optText(BOUNDS.op),
      status: optText(16),
    })
    .catchall(z.string({ error: 'must be a string (registerBranch takes string values only)' }))
    .transform((b): Registration => {
      const base = { gid: b.gid, transType: b.trans_type, branchId: b.branch_id, data: b.data };
      const bin = b.bin_data === undefined ? {} : { binData: b.bin_data };
      if (b.bin_data !== undefined && b.data !== '') throw new BadRequest('give data or bin_data, not both', 422);
      switch (b.trans_type) {
        case 'tcc':
          return { ...base, ...bin, kind: 'tcc', urls: { confirm: b.confirm, cancel: b.cancel } };
        case 'xa':
          if (b.url === '') throw new BadRequest('url is required for an xa branch');
          return { ...base, kind: 'xa', urls: { url: b.url } };
        case 'workflow': {
          // One row per step outcome, stored as the client reports it; the TM never calls it.
          if (b.op === '') throw new BadRequest('op is required for a workflow branch');
          if (hasControl(b.op)) throw new BadRequest('op has a control character', 422);
          const status = b.status;
          if (status !== 'succeed' && status !== 'failed' && status !== 'prepared') {
            throw new BadRequest(
              `status must be succeed, failed or prepared for a workflow branch, not '${status}'`,
              422,
            );
          }
          return { ...base, ...bin, kind: 'workflow', urls: {}, op: b.op, status };
        }
        default:
          throw new BadRequest(`registerBranch does not take trans_type '${b.trans_type}'`, 422);
      }
    }),
);

/** The rows a registration stores, once the transaction's protocol is known (grpc stores base64 bytes). */
export const registrationRows = (r: Registration, p: Protocol): BranchDef[] => {
  for (const [field, url] of Object.entries(r.urls)) {
    const problem = branchUrlProblem(url, p);
    if (problem) throw new BadRequest(`${field} ${problem}`, 422);
  }
  let data: string;
  if (p === 'grpc') data = r.binData ?? Buffer.from(r.data, 'utf8').toString('base64');
  else if (r.binData === undefined) data = r.data;
  else {
    const text = utf8Of(r.binData);
    if (text === null) throw new BadRequest(`bin_data is not UTF-8 text, as an ${p} body must be`, 422);
    data = text;
  }
  const { branchId } = r;
  switch (r.kind) {
    case 'tcc':
      return [
        { branchId, op: 'cancel', url: r.urls.cancel ?? '', data },
        { branchId, op: 'confirm', url: r.urls.confirm ?? '', data },
      ];
    case 'xa':
      return [
        { branchId, op: 'rollback', url: r.urls.url ?? '', data: '' },
        { branchId, op: 'commit', url: r.urls.url ?? '', data: '' },
      ];
    case 'workflow':
      return [{ branchId, op: r.op ?? '', url: '', data, status: r.status ?? 'prepared' }];
  }
};

// --- Query strings -------------------------------------------------------------------------------

/** One query parameter: absent is `''`, repeated is refused (`?gid=a&gid=b`). */
const q = (max: number) =>
  z.preprocess(
    (v) => v ?? '',
    z
      .string({ error: 'must be given once' })
      .max(max, { error: `is longer than ${max} characters` })
      .refine((s) => !hasControl(s), { error: 'has a control character' }),
  );

/** An integer query parameter from `min` to `max`, `dflt` when absent. */
const qInt = (min: number, max: number, dflt?: number) =>
  z.preprocess(
    (v) => v ?? '',
    z.string({ error: 'must be given once' }).transform((s, ctx) => {
      if (s === '') return dflt;
      const n = Number(s);
      if (!/^-?\d+$/.test(s) || !Number.isInteger(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `must be an integer from ${min} to ${max}`, params: { status: 400 } });
        return z.NEVER;
      }
      return n;
    }),
  );

/** A gid in a query string: required for `/query` and `/events` ("no gid specified" when absent, as DTM). */
const queryGid = () =>
  q(BOUNDS.gid).transform((s, ctx) => {
    if (s === '') {
      ctx.addIssue({ code: 'custom', message: 'no gid specified', path: [], params: { status: 400, bare: true } });
      return z.NEVER;
    }
    return s;
  });

export const queryGidSchema = z.object({ gid: queryGid() }).transform((x) => x.gid);

export const allQuerySchema = z
  .object({
    gid: q(BOUNDS.gid),
    position: q(BOUNDS.position),
    limit: qInt(1, 1000, 100),
    status: q(BOUNDS.filter),
    transType: q(BOUNDS.filter),
    createTimeStart: qInt(0, Number.MAX_SAFE_INTEGER),
    createTimeEnd: qInt(0, Number.MAX_SAFE_INTEGER),
  })
  .transform((x) => ({
    gid: x.gid,
    position: x.position,
    limit: x.limit ?? 100,
    status: x.status || undefined,
    transType: x.transType || undefined,
    createTimeStart: x.createTimeStart,
    createTimeEnd: x.createTimeEnd,
  }));

export const resetCronTimeQuerySchema = (defaultTimeoutS: number) =>
  z
    .object({ timeout: qInt(0, SECONDS.timeout_to_fail, defaultTimeoutS), limit: qInt(1, 10_000, 100) })
    .transform((x) => ({ timeoutS: x.timeout ?? defaultTimeoutS, limit: x.limit ?? 100 }));

const topic = () =>
  q(BOUNDS.topic).transform((s, ctx) => {
    if (s === '') ctx.addIssue({ code: 'custom', message: 'is required', params: { status: 400 } });
    else if (!TOPIC_NAME.test(s)) {
      ctx.addIssue({ code: 'custom', message: `'${s}' has characters other than letters, digits, _ . : -` });
    }
    return s;
  });

const requiredQ = (max: number) => q(max).refine((s) => s !== '', { error: 'is required', params: { status: 400 } });

export const subscribeQuerySchema = z.object({
  topic: topic(),
  // A subscriber is an HTTP or a gRPC RM: each delivery is routed by its url's form.
  url: requiredQ(BOUNDS.url).superRefine((url, ctx) => {
    const http = httpUrlProblem(url);
    if (http && grpcUrlProblem(url))
      ctx.addIssue(refuse(`${http} (or a gRPC target host:port/package.Service/Method)`));
  }),
  remark: q(BOUNDS.remark),
});

export const unsubscribeQuerySchema = z.object({ topic: topic(), url: requiredQ(BOUNDS.url) });

/** `scanKV` (DTM's admin listing of KV rows; topics are `cat=topics`). */
export const scanKvQuerySchema = z
  .object({ cat: q(BOUNDS.filter), position: q(BOUNDS.position), limit: qInt(1, 1000, 100) })
  .transform((x) => ({ cat: x.cat, position: x.position, limit: x.limit ?? 100 }));

/** `queryKV`: one row of a category (every row when `key` is empty). */
export const queryKvQuerySchema = z.object({ cat: q(BOUNDS.filter), key: q(BOUNDS.topic) });

export const topicParamSchema = z.object({ topic: topic() }).transform((x) => x.topic);

// --- JSON-RPC ------------------------------------------------------------------------------------

/** A JSON-RPC 2.0 request envelope (DTM's `api_json_rpc.go`): version "2.0", a non-empty id, a method name. */
export const jsonRpcEnvelopeSchema = z.object({
  jsonrpc: z.literal('2.0', { error: 'must be "2.0"' }),
  id: z
    .union([z.string(), z.number()], { error: 'must be a non-empty string (at most 256 characters) or a number' })
    .refine((id) => typeof id === 'number' || (id !== '' && id.length <= 256), {
      error: 'must be a non-empty string (at most 256 characters) or a number',
      params: { status: 400 },
    }),
  method: z.string({ error: 'must be a string' }).max(64, { error: 'is longer than 64 characters' }),
  params: z.unknown().optional(),
});
