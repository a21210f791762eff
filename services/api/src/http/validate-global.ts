import {
  sagaBranchId,
  subscriberBranchId,
  TRANS_TYPES,
  type BranchDef,
  type SagaOrdering,
  type TransDefinition,
  type TransOptions,
  type TransType,
} from '@dtm-ts/domain';
import { BadRequest } from './bad-request';

export interface Limits {
  readonly maxBranches: number;
  /** KAFKA_BROKERS is set: msg steps may name `kafka://<topic>`. */
  readonly kafka?: boolean;
}

/** Go's encoding/json matches keys case-insensitively; DTM clients rely on snake_case, so lower-case the top level. */
const lowerKeys = (o: Record<string, unknown>): Record<string, unknown> => {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k.toLowerCase()] = v;
  return out;
};

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The request body as an object with lower-case keys, or a 400. */
export const bodyObject = (body: unknown): Record<string, unknown> => {
  if (!isObject(body)) throw new BadRequest('request body must be a JSON object');
  return lowerKeys(body);
};

/** DTM strips these from gid and status (dtmimp.Escape). */
const escape = (s: string): string => s.replace(/[\n\r;]/g, '');

export const requireGid = (b: Record<string, unknown>): string => {
  const raw = b.gid;
  if (raw === undefined || raw === null || raw === '') throw new BadRequest('gid is required');
  if (typeof raw !== 'string') throw new BadRequest('gid must be a string');
  const gid = escape(raw);
  if (gid === '') throw new BadRequest('gid is required');
  if (gid.length > 128) throw new BadRequest('gid is longer than 128 characters', 422);
  if (gid.startsWith('$')) throw new BadRequest("gid may not start with '$' (reserved for the TM's own streams)", 422);
  return gid;
};

const optString = (b: Record<string, unknown>, key: string): string => {
  const v = b[key];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new BadRequest(`${key} must be a string`);
  return v;
};

const optBool = (b: Record<string, unknown>, key: string): boolean => {
  const v = b[key];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw new BadRequest(`${key} must be true or false`);
  return v;
};

const MAX_SECONDS = 10 * 365 * 24 * 3600;
const optSeconds = (b: Record<string, unknown>, key: string): number => {
  const v = b[key];
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new BadRequest(`${key} must be an integer`);
  if (v < 0 || v > MAX_SECONDS) throw new BadRequest(`${key} must be between 0 and ${MAX_SECONDS}`, 422);
  return v;
};

const stringMap = (v: unknown, what: string): Record<string, string> => {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw new BadRequest(`${what} must be an object of strings`);
  for (const [k, x] of Object.entries(v))
    if (typeof x !== 'string') throw new BadRequest(`${what}.${k} must be a string`);
  return v as Record<string, string>;
};

/** The protocols a transaction may name; `''` is http. */
export type Protocol = TransDefinition['protocol'];

/** DTM's gRPC branch URL, `host:port/package.Service/Method` (optionally `dns:///host:port/…`). */
const GRPC_TARGET = /^(dns:\/\/\/)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}\/[A-Za-z_][\w.]*\/[A-Za-z_]\w*$/;

/**
 * An http(s) URL, or for `protocol` grpc also a gRPC target: as in DTM, an http(s) URL in a grpc
 * transaction is called over HTTP, anything else over gRPC.
 */
export const checkUrl = (url: string, what: string, protocol: Protocol = 'http'): void => {
  if (url === '') return;
  if (protocol === 'grpc' && GRPC_TARGET.test(url)) return;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    if (protocol === 'grpc')
      throw new BadRequest(`${what} must be host:port/package.Service/Method or an http(s) URL: ${url}`, 422);
    throw new BadRequest(`${what} is not a valid URL: ${url}`, 422);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    if (protocol === 'grpc')
      throw new BadRequest(`${what} must be host:port/package.Service/Method or an http(s) URL: ${url}`, 422);
    throw new BadRequest(`${what} must be an http(s) URL: ${url}`, 422);
  }
};

/** `protocol`: '' or http (the default), or grpc. */
const parseProtocol = (b: Record<string, unknown>): Protocol => {
  const protocol = optString(b, 'protocol');
  if (protocol === '' || protocol === 'http') return 'http';
  if (protocol === 'grpc') return 'grpc';
  throw new BadRequest(`protocol '${protocol}' is not supported (http or grpc)`, 422);
};

/** A base64 field, as it stands (stored payloads of grpc transactions are base64). */
const base64Field = (v: unknown, what: string): string => {
  if (typeof v !== 'string' || !BASE64.test(v)) throw new BadRequest(`${what} must be base64 text`);
  return v;
};

/** A payload string given as text: grpc transactions store its UTF-8 bytes as base64 (DTM's `[]byte(p)`). */
const storedPayload = (text: string, protocol: Protocol): string =>
  protocol === 'grpc' ? Buffer.from(text, 'utf8').toString('base64') : text;

/** `custom_data` is JSON text holding an object, whatever the mode. */
const customDataObject = (customData: string): Record<string, unknown> => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(customData);
  } catch {
    throw new BadRequest('custom_data must be JSON text');
  }
  if (!isObject(parsed)) throw new BadRequest('custom_data must be a JSON object');
  return parsed;
};

/** Parses `custom_data` of a saga: `{"concurrent":true,"orders":{"1":[0]}}`; rejects orders that can never run. */
const sagaOrdering = (customData: string, n: number): SagaOrdering => {
  if (customData === '') return { concurrent: false, orders: {} };
  const parsed = customDataObject(customData);
  const concurrent = parsed.concurrent ?? false;
  if (typeof concurrent !== 'boolean') throw new BadRequest('custom_data.concurrent must be true or false');
  const rawOrders = parsed.orders ?? {};
  if (!isObject(rawOrders)) throw new BadRequest('custom_data.orders must be an object');
  const orders: Record<number, number[]> = {};
  for (const [k, v] of Object.entries(rawOrders)) {
    const i = Number(k);
    if (!Number.isInteger(i) || i < 0 || i >= n)
      throw new BadRequest(`custom_data.orders has step ${k}, but there are ${n} steps`, 422);
    if (!Array.isArray(v) || v.some((j) => !Number.isInteger(j) || j < 0 || j >= n || j === i)) {
      throw new BadRequest(`custom_data.orders.${k} must list other step indexes below ${n}`, 422);
    }
    orders[i] = [...new Set(v as number[])];
  }
  // A cycle would leave its steps waiting forever: refuse it up front.
  const state = new Map<number, 'visiting' | 'done'>();
  const visit = (i: number): void => {
    if (state.get(i) === 'done') return;
    if (state.get(i) === 'visiting') throw new BadRequest(`custom_data.orders has a cycle through step ${i}`, 422);
    state.set(i, 'visiting');
    for (const j of orders[i] ?? []) visit(j);
    state.set(i, 'done');
  };
  for (let i = 0; i < n; i++) visit(i);
  return { concurrent, orders: concurrent ? orders : {} };
};

const msgCustomData = (customData: string): number => {
  if (customData === '') return 0;
  const parsed = customDataObject(customData);
  const delay = parsed.delay ?? 0;
  if (typeof delay !== 'number' || !Number.isInteger(delay) || delay < 0 || delay > MAX_SECONDS) {
    throw new BadRequest(`custom_data.delay must be a whole number of seconds from 0 to ${MAX_SECONDS}`, 422);
  }
  return delay;
};

/** Standard or URL-safe base64, as Go's protobuf JSON reads `bytes`. */
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/**
 * Parses `custom_data` of a workflow: `{"name":…,"data":<base64>}`. `name` is the op of the resume
 * callback, `data` (decoded) its body; a grpc workflow keeps it base64, as it stores every payload. Empty
 * custom_data gives no workflow (a submit need not repeat it).
 */
const workflowCustomData = (customData: string, protocol: Protocol): TransDefinition['workflow'] => {
  if (customData === '') return undefined;
  const parsed = customDataObject(customData);
  const { name, data } = parsed;
  if (typeof name !== 'string' || name === '')
    throw new BadRequest('custom_data.name (the workflow name) is required', 422);
  if (data !== undefined && data !== null && (typeof data !== 'string' || !BASE64.test(data))) {
    throw new BadRequest('custom_data.data must be base64 text', 422);
  }
  const input =
    typeof data !== 'string' ? '' : protocol === 'grpc' ? data : Buffer.from(data, 'base64').toString('utf8');
  return { name, input };
};

/** `kafka://<topic>` in a msg step: produced to that Kafka topic once the message is committed. */
const KAFKA_SCHEME = 'kafka://';
/** Kafka's rule for topic names (as KAFKA_TOPIC_NAME in @dtm-ts/adapters). */
const KAFKA_TOPIC_NAME = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,249}$/;

const checkKafkaAction = (action: string, what: string, kafka: boolean): void => {
  if (!kafka) throw new BadRequest(`${what}: kafka:// delivery needs KAFKA_BROKERS, which this TM does not have`, 422);
  const topic = action.slice(KAFKA_SCHEME.length);
  if (!KAFKA_TOPIC_NAME.test(topic)) {
    throw new BadRequest(`${what}: '${topic}' is not a Kafka topic name (1 to 249 of a-z A-Z 0-9 . _ -)`, 422);
  }
};

/** `topic://name` in a msg step: delivered to the topic's subscribers, expanded when the message is stored. */
export const TOPIC_SCHEME = 'topic://';

/** The part shared by `prepare` and `submit` of every mode: gid, trans_type and the options. */
const parseHeader = (
  b: Record<string, unknown>,
): { gid: string; transType: TransType; protocol: Protocol; options: TransOptions } => {
  const gid = requireGid(b);
  const transType = b.trans_type;
  if (transType === undefined || transType === '' || transType === null) throw new BadRequest('trans_type is required');
  if (typeof transType !== 'string') throw new BadRequest('trans_type must be a string');
  if (!TRANS_TYPES.includes(transType)) throw new BadRequest(`unknown trans_type '${transType}'`, 422);
  const protocol = parseProtocol(b);
  const options: TransOptions = {
    timeoutToFail: optSeconds(b, 'timeout_to_fail'),
    requestTimeout: optSeconds(b, 'request_timeout'),
    retryInterval: optSeconds(b, 'retry_interval'),
    retryLimit: optSeconds(b, 'retry_limit'),
    branchHeaders: stringMap(b.branch_headers, 'branch_headers'),
    waitResult: optBool(b, 'wait_result'),
  };
  return { gid, transType: transType as TransType, protocol, options };
};

const parseSteps = (b: Record<string, unknown>, limits: Limits, transType: TransType, protocol: Protocol) => {
  const rawSteps = b.steps ?? [];
  if (!Array.isArray(rawSteps)) throw new BadRequest('steps must be an array');
  if (rawSteps.length > limits.maxBranches) {
    throw new BadRequest(`too many steps: ${rawSteps.length} > ${limits.maxBranches}`, 422);
  }
  const steps = rawSteps.map((s, i) => {
    const step = stringMap(s, `steps[${i}]`);
    if (step.action === undefined) throw new BadRequest(`steps[${i}].action is required`);
    if (transType === 'msg' && step.action.startsWith(TOPIC_SCHEME)) {
      if (step.action.length === TOPIC_SCHEME.length) throw new BadRequest(`steps[${i}].action names no topic`, 422);
    } else if (transType === 'msg' && step.action.startsWith(KAFKA_SCHEME)) {
      checkKafkaAction(step.action, `steps[${i}].action`, limits.kafka ?? false);
    } else checkUrl(step.action, `steps[${i}].action`, protocol);
    checkUrl(step.compensate ?? '', `steps[${i}].compensate`, protocol);
    return step;
  });
  const binary = b.bin_payloads !== undefined && b.bin_payloads !== null;
  if (binary && protocol !== 'grpc') throw new BadRequest('bin_payloads is for protocol grpc', 422);
  if (binary && b.payloads !== undefined && b.payloads !== null) {
    throw new BadRequest('give payloads or bin_payloads, not both');
  }
  const key = binary ? 'bin_payloads' : 'payloads';
  const rawPayloads = (binary ? b.bin_payloads : b.payloads) ?? [];
  if (!Array.isArray(rawPayloads) || rawPayloads.some((p) => typeof p !== 'string')) {
    throw new BadRequest(`${key} must be an array of strings`);
  }
  if (rawPayloads.length > steps.length) {
    throw new BadRequest(`${key} has ${rawPayloads.length} entries for ${steps.length} steps`, 422);
  }
  const payloads = steps.map((s, i) => {
    const p = rawPayloads[i] as string | undefined;
    if (binary && p !== undefined) return base64Field(p, `bin_payloads[${i}]`);
    return storedPayload(p ?? s.data ?? '', protocol);
  });
  return { steps, payloads };
};

/**
 * Validates a `prepare` or `submit` body into a definition and its branch rows, or throws
 * BadRequest; nothing is written before this passes. Rows as DTM generates them: saga step i →
 * compensate + action `%02d`; msg step i → action `%02d` (a `topic://` url is expanded by the
 * caller); tcc, xa and workflow → none (they are registered later).
 */
export const parseGlobalRequest = (
  body: unknown,
  limits: Limits,
): { definition: TransDefinition; branches: BranchDef[] } => {
  const b = bodyObject(body);
  const { gid, transType, protocol, options } = parseHeader(b);
  const twoPhase = transType === 'tcc' || transType === 'xa' || transType === 'workflow';
  // tcc, xa and workflow carry no steps: their branches arrive through registerBranch.
  const { steps, payloads } = twoPhase ? { steps: [], payloads: [] } : parseSteps(b, limits, transType, protocol);
  const customData = optString(b, 'custom_data');
  const queryPrepared = optString(b, 'query_prepared');
  if (transType === 'msg' || transType === 'workflow') checkUrl(queryPrepared, 'query_prepared', protocol);
  const workflow = transType === 'workflow' ? workflowCustomData(customData, protocol) : undefined;
  const reqExtra = stringMap(b.req_extra, 'req_extra');
  const definition: TransDefinition = {
    gid,
    transType,
    protocol,
    steps,
    payloads,
    customData,
    queryPrepared,
    options,
    ordering:
      transType === 'saga'
        ? sagaOrdering(customData, steps.length)
        : { concurrent: transType === 'msg' && optBool(b, 'concurrent'), orders: {} },
    delayS: transType === 'msg' ? msgCustomData(customData) : 0,
    ...(workflow ? { workflow } : {}),
    ...(transType === 'workflow' && Object.keys(reqExtra).length > 0 ? { reqExtra } : {}),
  };
  const branches: BranchDef[] =
    transType === 'saga'
      ? steps.flatMap((s, i) => [
          { branchId: sagaBranchId(i), op: 'compensate' as const, url: s.compensate ?? '', data: payloads[i] ?? '' },
          { branchId: sagaBranchId(i), op: 'action' as const, url: s.action ?? '', data: payloads[i] ?? '' },
        ])
      : steps.map((s, i) => ({
          branchId: sagaBranchId(i),
          op: 'action' as const,
          url: s.action ?? '',
          data: payloads[i] ?? '',
        }));
  return { definition, branches };
};

/**
 * Expands `topic://T` rows into one row per subscriber, `01-01`, `01-02`, … as DTM does. The
 * subscribers are read from the log when the message is stored, so a deleted topic is gone at once.
 */
export const expandTopics = async (
  branches: BranchDef[],
  subscribersOf: (topic: string) => Promise<string[]>,
): Promise<BranchDef[]> => {
  const out: BranchDef[] = [];
  for (const b of branches) {
    if (!b.url.startsWith(TOPIC_SCHEME)) {
      out.push(b);
      continue;
    }
    const topic = b.url.slice(TOPIC_SCHEME.length);
    const urls = await subscribersOf(topic);
    if (urls.length === 0) throw new BadRequest(`topic not found: ${topic} has no subscribers`, 422);
    urls.forEach((url, k) => out.push({ ...b, branchId: subscriberBranchId(b.branchId, k), url }));
  }
  return out;
};

/**
 * `registerBranch` (and its aliases): a flat object of strings, as DTM's binder requires. `protocol`
 * grpc (the gRPC API sets it) allows gRPC URLs and `bin_data`, the payload's bytes as base64.
 */
export const parseRegisterBranch = (body: unknown): { gid: string; transType: string; branches: BranchDef[] } => {
  const raw = bodyObject(body);
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string') throw new BadRequest(`${k} must be a string (registerBranch takes string values only)`);
  }
  const b = raw as Record<string, string>;
  const protocol = parseProtocol(b);
  if (b.bin_data !== undefined && protocol !== 'grpc') throw new BadRequest('bin_data is for protocol grpc', 422);
  if (b.bin_data !== undefined && b.data !== undefined) throw new BadRequest('give data or bin_data, not both');
  const checkBranchUrl = (url: string, what: string) => checkUrl(url, what, protocol);
  const gid = requireGid(b);
  const transType = b.trans_type ?? '';
  const branchId = b.branch_id ?? '';
  if (transType === '') throw new BadRequest('trans_type is required');
  if (branchId === '') throw new BadRequest('branch_id is required');
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(branchId))
    throw new BadRequest(`branch_id '${branchId}' has characters other than letters, digits, _ . -`, 422);
  const data = b.bin_data !== undefined ? base64Field(b.bin_data, 'bin_data') : storedPayload(b.data ?? '', protocol);
  if (transType === 'tcc') {
    const confirm = b.confirm ?? '';
    const cancel = b.cancel ?? '';
    checkBranchUrl(confirm, 'confirm');
    checkBranchUrl(cancel, 'cancel');
    return {
      gid,
      transType,
      branches: [
        { branchId, op: 'cancel', url: cancel, data },
        { branchId, op: 'confirm', url: confirm, data },
      ],
    };
  }
  if (transType === 'xa') {
    const url = b.url ?? '';
    if (url === '') throw new BadRequest('url is required for an xa branch');
    checkBranchUrl(url, 'url');
    return {
      gid,
      transType,
      branches: [
        { branchId, op: 'rollback', url, data: '' },
        { branchId, op: 'commit', url, data: '' },
      ],
    };
  }
  if (transType === 'workflow') {
    // One row per step outcome, stored as the client reports it; the TM never calls it.
    const op = b.op ?? '';
    const status = b.status ?? '';
    if (op === '') throw new BadRequest('op is required for a workflow branch');
    if (op.length > 128) throw new BadRequest('op is longer than 128 characters', 422);
    if (status !== 'succeed' && status !== 'failed' && status !== 'prepared') {
      throw new BadRequest(`status must be succeed, failed or prepared for a workflow branch, not '${status}'`, 422);
    }
    return { gid, transType, branches: [{ branchId, op, url: '', data, status }] };
  }
  if (TRANS_TYPES.includes(transType))
    throw new BadRequest(`registerBranch does not take trans_type '${transType}'`, 422);
  throw new BadRequest(`unknown trans_type '${transType}'`, 422);
};

/** `abort`: `{gid, trans_type, rollback_reason?}`. */
export const parseAbort = (body: unknown): { gid: string; transType: string; reason: string } => {
  const b = bodyObject(body);
  const gid = requireGid(b);
  const transType = b.trans_type;
  if (transType === undefined || transType === null || transType === '') throw new BadRequest('trans_type is required');
  if (typeof transType !== 'string') throw new BadRequest('trans_type must be a string');
  return { gid, transType, reason: optString(b, 'rollback_reason') };
};
