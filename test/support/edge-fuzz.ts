import fc from 'fast-check';
import { topicStreamId } from '@dtm-ts/domain';
import type { RunningTm } from '@dtm-ts/tm';
import type { BranchPeer } from '../peers/http-branch-peer';

/**
 * Property-based fuzz of every endpoint of the API, HTTP and JSON-RPC: generated bodies and query
 * strings (wrong types, huge and negative numbers, lone surrogates, control characters, deep
 * nesting, 100 KB strings, prototype keys), mostly as mutations of valid requests so that the
 * validation is explored past its first check. For each case: no answer ≥ 500, nothing written
 * when refused, and every accepted saga or message whose URLs all point at the test RM ends.
 */

/** JSON text spliced in as is (deep nesting, own `__proto__` keys), where JSON.stringify could not produce it. */
class RawJson {
  constructor(readonly text: string) {}
}

const toJson = (v: unknown): string => {
  if (v instanceof RawJson) return v.text;
  if (Array.isArray(v)) return `[${v.map(toJson).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
};

const nested = (depth: number): RawJson => new RawJson(`${'['.repeat(depth)}1${']'.repeat(depth)}`);

const weirdString = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 6 }),
  fc.constantFrom(
    '',
    '\ud800',
    'a\udc00b',
    '\u0000',
    'line\r\nbreak',
    ';',
    '\u0085',
    '\u2028',
    '$all',
    'http://user:pw@127.0.0.1/x',
    'ftp://x/y',
    'http://169.254.169.254/latest/meta-data/',
    'kafka://orders',
    'topic://t',
    '{"concurrent":true,"orders":{"0":[1],"1":[0]}}',
    '{"name":"wf\\ud800","data":""}',
    'localhost:50051/busi.Busi/TransIn',
    '__proto__',
  ),
  fc.constant('x'.repeat(100_000)),
);

const weirdNumber = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(-1, 0, 1.5, 2 ** 31, 2 ** 53, 3_000_000, 1e308, -1e308, Number.MAX_SAFE_INTEGER),
);

const protoObject = fc.constantFrom(
  new RawJson('{"__proto__":{"gid":"polluted","retry_limit":7}}'),
  new RawJson('{"constructor":{"prototype":{"x":1}}}'),
  new RawJson('{"__proto__":"x","toString":"y"}'),
);

/** Any JSON value, weighted towards the troublesome ones. */
const weirdValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: weirdString },
  { weight: 2, arbitrary: weirdNumber },
  fc.boolean(),
  fc.constant(null),
  fc.array(weirdString, { maxLength: 3 }),
  fc.dictionary(weirdString, weirdString, { maxKeys: 3 }),
  fc.constantFrom(33, 1000, 50_000).map(nested),
  protoObject,
  fc.jsonValue({ maxDepth: 3 }),
);

const GLOBAL_FIELDS = [
  'gid',
  'trans_type',
  'protocol',
  'steps',
  'payloads',
  'bin_payloads',
  'custom_data',
  'query_prepared',
  'timeout_to_fail',
  'request_timeout',
  'retry_interval',
  'retry_limit',
  'branch_headers',
  'wait_result',
  'concurrent',
  'req_extra',
  'rollback_reason',
  '__proto__',
  'constructor',
  'GID',
];
const REGISTER_FIELDS = [
  'gid',
  'trans_type',
  'branch_id',
  'data',
  'bin_data',
  'confirm',
  'cancel',
  'url',
  'op',
  'status',
];

/** Valid branch headers, so that a mutated-but-accepted saga still reaches its RM. */
const cleanHeaders = fc.dictionary(
  fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/).filter((n) => !/^(te|host|expect|upgrade|trailer|connection)$/.test(n)),
  fc.stringMatching(/^[ -~]{0,20}$/),
  { maxKeys: 3 },
);

type Mutation = { kind: 'set'; key: string; value: unknown } | { kind: 'delete'; key: string };

const mutations = (fields: string[]): fc.Arbitrary<readonly Mutation[]> =>
  fc.oneof(
    { weight: 1, arbitrary: fc.constant([]) },
    {
      weight: 3,
      arbitrary: fc.array(
        fc.oneof(
          fc.record({ kind: fc.constant('set' as const), key: fc.constantFrom(...fields), value: weirdValue }),
          fc.record({ kind: fc.constant('set' as const), key: weirdString, value: weirdValue }),
          fc.record({ kind: fc.constant('delete' as const), key: fc.constantFrom(...fields) }),
        ),
        { minLength: 1, maxLength: 3 },
      ),
    },
  );

const mutate = (body: Record<string, unknown>, ms: readonly Mutation[]): Record<string, unknown> => {
  const out: Record<string, unknown> = Object.fromEntries(Object.entries(body));
  for (const m of ms) {
    if (m.kind === 'delete') delete out[m.key];
    else Object.defineProperty(out, m.key, { value: m.value, enumerable: true, configurable: true, writable: true });
  }
  return out;
};

/** One request to the API. `gids` lists the gids it names, `topic` the topic it names (for the nothing-written check). */
export interface FuzzCase {
  readonly label: string;
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly path: string;
  readonly body?: string;
  readonly gid?: unknown;
  readonly topic?: string;
  /** A saga/msg submit whose every URL points at the test RM: if accepted, it must end. */
  readonly mustEnd: boolean;
  readonly jsonRpc: boolean;
}

/** `submit` thrice: accepted sagas and messages are the ones that must end. */
const BODY_ENDPOINTS = [
  'prepare',
  'submit',
  'submit',
  'submit',
  'abort',
  'registerBranch',
  'registerTccBranch',
  'registerXaBranch',
  'prepareWorkflow',
  'forceStop',
  'resetNextCronTime',
] as const;

/** Percent-encodes any string, lone surrogates included (as their WTF-8 bytes). */
const encodeAny = (s: string): string => {
  try {
    return encodeURIComponent(s);
  } catch {
    return [...s]
      .map((c) => {
        try {
          return encodeURIComponent(c);
        } catch {
          const u = c.charCodeAt(0);
          return [0xe0 | (u >> 12), 0x80 | ((u >> 6) & 0x3f), 0x80 | (u & 0x3f)]
            .map((b) => `%${b.toString(16).toUpperCase()}`)
            .join('');
        }
      })
      .join('');
  }
};

const QUERY_ENDPOINTS: Record<string, string[]> = {
  query: ['gid'],
  events: ['gid'],
  all: ['gid', 'position', 'limit', 'status', 'transType', 'createTimeStart', 'createTimeEnd'],
  resetCronTime: ['timeout', 'limit'],
  subscribe: ['topic', 'url', 'remark'],
  unsubscribe: ['topic', 'url'],
  newGid: [],
  version: [],
};

/** The arbitrary of every case, for the RM at `peerUrl(path)`; `n` makes gids unique per case. */
export const fuzzCases = (peerUrl: (path: string) => string, run: string): fc.Arbitrary<FuzzCase> => {
  let n = 0;
  const freshGid = () => `fz-${run}-${n++}`;
  const validGlobal = fc
    .record({
      transType: fc.constantFrom('saga', 'saga', 'msg', 'tcc', 'xa', 'workflow'),
      steps: fc.integer({ min: 0, max: 3 }),
      waitResult: fc.boolean(),
      headers: cleanHeaders,
      concurrent: fc.boolean(),
      requestTimeout: fc.integer({ min: 0, max: 3600 }),
      retryInterval: fc.integer({ min: 0, max: 30 }),
    })
    .map((v) => {
      const steps = Array.from({ length: v.steps }, (_, i) => ({
        action: peerUrl(`ok/a${i}`),
        compensate: peerUrl(`ok/c${i}`),
      }));
      return {
        gid: freshGid(),
        trans_type: v.transType,
        steps,
        payloads: steps.map((_, i) => JSON.stringify({ i })),
        wait_result: v.waitResult,
        branch_headers: v.headers,
        request_timeout: v.requestTimeout,
        retry_interval: v.retryInterval,
        ...(v.transType === 'saga' && v.concurrent ? { custom_data: '{"concurrent":true}' } : {}),
        ...(v.transType === 'msg' || v.transType === 'workflow' ? { query_prepared: peerUrl('ok/qp') } : {}),
        ...(v.transType === 'workflow' ? { custom_data: '{"name":"wf","data":""}' } : {}),
      };
    });
  const validRegister = fc.constantFrom('tcc', 'xa', 'workflow').map((t) => ({
    gid: freshGid(),
    trans_type: t,
    branch_id: '01',
    data: '{}',
    confirm: peerUrl('ok/confirm'),
    cancel: peerUrl('ok/cancel'),
    url: peerUrl('ok/xa'),
    op: 'step',
    status: 'succeed',
  }));

  const bodyCase = fc
    .tuple(
      fc.constantFrom(...BODY_ENDPOINTS),
      validGlobal,
      validRegister,
      mutations(GLOBAL_FIELDS),
      mutations(REGISTER_FIELDS),
      fc.boolean(),
    )
    .map(([endpoint, global, register, gm, rm, jsonRpc]): FuzzCase => {
      const isRegister = endpoint.startsWith('register');
      const body = isRegister ? mutate(register, rm) : mutate(global, gm);
      // A saga or msg submit, unmutated in its URLs, must end once accepted.
      const mustEnd =
        endpoint === 'submit' &&
        (body.trans_type === 'saga' || body.trans_type === 'msg') &&
        toJson(body.steps ?? []) === toJson(global.steps) &&
        (body.query_prepared === undefined || body.query_prepared === global.query_prepared);
      const rpcMethod = isRegister ? 'registerBranch' : endpoint;
      const rpcable = ['prepare', 'submit', 'abort', 'registerBranch'].includes(rpcMethod) && jsonRpc;
      return {
        label: rpcable ? `json-rpc ${rpcMethod}` : `POST ${endpoint}`,
        method: 'POST',
        path: rpcable ? '/api/json-rpc' : `/api/dtmsvr/${endpoint}`,
        body: rpcable ? toJson({ jsonrpc: '2.0', id: 1, method: rpcMethod, params: body }) : toJson(body),
        gid: body.gid,
        mustEnd,
        jsonRpc: rpcable,
      };
    });

  const anyBodyCase = fc
    .tuple(
      fc.constantFrom(...BODY_ENDPOINTS),
      fc.oneof(
        weirdValue,
        fc.string({ maxLength: 30 }).map((s) => new RawJson(s)),
      ),
    )
    .map(([endpoint, v]): FuzzCase => ({
      label: `POST ${endpoint} (any body)`,
      method: 'POST',
      path: `/api/dtmsvr/${endpoint}`,
      body: toJson(v),
      mustEnd: false,
      jsonRpc: false,
    }));

  const rpcEnvelopeCase = fc
    .record({
      jsonrpc: fc.oneof(fc.constant('2.0'), weirdValue),
      id: fc.oneof(fc.constant(1), weirdValue),
      method: fc.oneof(fc.constantFrom('newGid', 'prepare', 'submit', 'abort', 'registerBranch', 'query'), weirdValue),
      params: weirdValue,
    })
    .map((env): FuzzCase => ({
      label: 'json-rpc envelope',
      method: 'POST',
      path: '/api/json-rpc',
      body: toJson(env),
      mustEnd: false,
      jsonRpc: true,
    }));

  const queryCase = fc
    .tuple(
      fc.constantFrom(...Object.keys(QUERY_ENDPOINTS)),
      fc.array(
        fc.tuple(
          fc.oneof(fc.constantFrom('gid', 'topic', 'url', 'limit', 'timeout', 'position'), weirdString),
          fc.oneof(weirdString, weirdNumber.map(String)),
        ),
        {
          maxLength: 4,
        },
      ),
      fc.boolean(),
    )
    .map(([endpoint, extra, valid]): FuzzCase => {
      const gid = freshGid();
      const topic = `fz-topic-${gid}`;
      const base: [string, string][] = valid
        ? QUERY_ENDPOINTS[endpoint]!.map((k) => [
            k,
            k === 'gid' ? gid : k === 'topic' ? topic : k === 'url' ? peerUrl('ok/sub') : k === 'limit' ? '10' : '',
          ])
        : [];
      const params = [...base, ...extra.map(([k, v]) => [String(k), String(v)] as [string, string])];
      const qs = params.map(([k, v]) => `${encodeAny(k)}=${encodeAny(v)}`).join('&');
      return {
        label: `GET ${endpoint}`,
        method: 'GET',
        path: `/api/dtmsvr/${endpoint}${qs ? `?${qs}` : ''}`,
        gid: endpoint === 'all' || endpoint === 'resetCronTime' ? undefined : gid,
        topic: endpoint === 'subscribe' || endpoint === 'unsubscribe' ? topic : undefined,
        mustEnd: false,
        jsonRpc: false,
      };
    });

  const deleteTopicCase = weirdString.map((name): FuzzCase => ({
    label: 'DELETE topic',
    method: 'DELETE',
    path: `/api/dtmsvr/topic/${encodeAny(name)}`,
    topic: name,
    mustEnd: false,
    jsonRpc: false,
  }));

  return fc.oneof(
    { weight: 8, arbitrary: bodyCase },
    { weight: 2, arbitrary: anyBodyCase },
    { weight: 2, arbitrary: rpcEnvelopeCase },
    { weight: 3, arbitrary: queryCase },
    { weight: 1, arbitrary: deleteTopicCase },
  );
};

export interface FuzzReport {
  readonly cases: number;
  readonly accepted: number;
  readonly refused: number;
  /** Answers ≥ 500 (or JSON-RPC -32603), with the case that caused each. */
  readonly serverErrors: { case: FuzzCase; status: number; body: string }[];
  /** Refused requests that nevertheless wrote to the log of their gid or topic. */
  readonly writtenOnRefusal: { case: FuzzCase; status: number }[];
  /** Accepted sagas/messages to the test RM that did not end within the deadline. */
  readonly stranded: string[];
  readonly mustEnd: number;
}

const DTM_ESCAPE = /[\n\r;]/g;
const gidOf = (v: unknown): string | null =>
  typeof v === 'string' && v.replace(DTM_ESCAPE, '') !== '' ? v.replace(DTM_ESCAPE, '') : null;

/**
 * Runs `runs` cases from `seed` against a running TM whose RM peer answers 200, then waits (up to
 * `endDeadlineMs`) for every accepted saga/msg to end. Never throws on a finding: it reports.
 */
export const runEdgeFuzz = async (opts: {
  tm: RunningTm;
  peer: BranchPeer;
  runs: number;
  seed: number;
  endDeadlineMs?: number;
  onProgress?: (done: number) => void;
}): Promise<FuzzReport> => {
  const { tm, peer, runs, seed } = opts;
  const cases = fc.sample(
    fuzzCases((path) => peer.url(path), `${seed}`),
    { seed, numRuns: runs },
  );
  const touched = new Set<string>();
  const serverErrors: FuzzReport['serverErrors'] = [];
  const refusedCases: { case: FuzzCase; status: number }[] = [];
  const toEnd: string[] = [];
  let accepted = 0;
  for (const [i, c] of cases.entries()) {
    const res = await fetch(`${tm.url}${c.path}`, {
      method: c.method,
      headers: c.body === undefined ? {} : { 'content-type': 'application/json' },
      body: c.body,
    });
    const text = await res.text();
    let rpcError: { code?: number } | null = null;
    if (c.jsonRpc && res.status === 200) {
      try {
        rpcError = (JSON.parse(text) as { error: { code?: number } | null }).error;
      } catch {
        rpcError = { code: -32603 };
      }
    }
    const refused = res.status >= 400 || rpcError !== null;
    if (res.status >= 500 || rpcError?.code === -32603)
      serverErrors.push({ case: c, status: res.status, body: text.slice(0, 300) });
    const gid = gidOf(c.gid);
    if (refused) refusedCases.push({ case: c, status: res.status });
    else {
      accepted++;
      if (gid) touched.add(gid);
      if (c.topic) touched.add(topicStreamId(c.topic));
      if (c.mustEnd && gid) toEnd.push(gid);
    }
    opts.onProgress?.(i + 1);
  }
  // Nothing written on a refusal: no stream for a gid or topic no accepted case touched.
  const writtenOnRefusal: FuzzReport['writtenOnRefusal'] = [];
  for (const r of refusedCases) {
    const gid = gidOf(r.case.gid);
    if (gid && !touched.has(gid) && (await tm.infra.log.read(gid)).events.length > 0) writtenOnRefusal.push(r);
    const topic = r.case.topic ? topicStreamId(r.case.topic) : null;
    if (topic && !touched.has(topic) && (await tm.infra.topics.read(topic)).events.length > 0) writtenOnRefusal.push(r);
  }
  const deadline = Date.now() + (opts.endDeadlineMs ?? 30_000);
  let pending = [...new Set(toEnd)];
  while (pending.length > 0 && Date.now() < deadline) {
    const still: string[] = [];
    for (const gid of pending) {
      const res = await fetch(`${tm.url}/api/dtmsvr/query?gid=${encodeURIComponent(gid)}`);
      const status = ((await res.json()) as { transaction: { status?: string } | null }).transaction?.status;
      if (status !== 'succeed' && status !== 'failed') still.push(gid);
    }
    pending = still;
    if (pending.length > 0) await new Promise((r) => setTimeout(r, 200));
  }
  return {
    cases: cases.length,
    accepted,
    refused: refusedCases.length,
    serverErrors,
    writtenOnRefusal,
    stranded: pending,
    mustEnd: new Set(toEnd).size,
  };
};
