import { z } from 'zod';
import { BadRequest } from '../http/bad-request';

/**
 * Building blocks of the edge schemas: every request field is checked here before anything is
 * decided or written. A refusal is a BadRequest naming the field: 400 when the request is malformed
 * (wrong type, missing field, broken text), 422 when it is well-formed but not allowed (out of range,
 * too long, a URL the TM will not call).
 */

/** Bounds of every free-form field, in UTF-16 code units (the README's "Security" section lists them). */
export const BOUNDS = {
  gid: 128,
  branchId: 64,
  op: 128,
  topic: 128,
  workflowName: 128,
  reason: 4096,
  remark: 1024,
  url: 4096,
  position: 256,
  filter: 64,
  /** How deep a request body may nest objects and arrays. */
  depth: 32,
  headerCount: 64,
  /** Sum of the lengths of every branch_headers name and value. */
  headerBytes: 8192,
} as const;

/** Seconds options: each fits what the runtime can honour (a call timeout must fit a timer, 2^31-1 ms). */
export const SECONDS = {
  timeout_to_fail: 365 * 24 * 3600,
  request_timeout: 3600,
  retry_interval: 24 * 3600,
  retry_limit: 1_000_000,
  delay: 365 * 24 * 3600,
} as const;

/** A lone UTF-16 surrogate: with the `u` flag a paired one is one code point and does not match. */
const LONE_SURROGATE = /\p{Cs}/u;
export const isWellFormed = (s: string): boolean => !LONE_SURROGATE.test(s);

/** C0 controls, DEL and C1 controls: never part of an id. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
export const hasControl = (s: string): boolean => CONTROL.test(s);

/** `a.b[2].c` for a zod path, as the error messages name fields. */
const fieldPath = (path: readonly PropertyKey[]): string =>
  path.reduce<string>(
    (acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc === '' ? String(k) : `${acc}.${String(k)}`),
    '',
  );

/** Status a refusal carries: 400 for a malformed request; custom issues say which (default 422). */
const statusOf = (issue: z.core.$ZodIssue): 400 | 422 => {
  if (issue.code === 'invalid_type') return 400;
  if (issue.code === 'custom' && (issue.params as { status?: number } | undefined)?.status === 400) return 400;
  if (issue.code === 'invalid_union') return 400;
  return 422;
};

/**
 * The first place in a JSON value that breaks the rules every field shares: a key or string that is
 * not well-formed Unicode (a lone surrogate), or nesting deeper than BOUNDS.depth. Iterative, so
 * no body can exhaust the stack. `null` when the value is clean.
 */
export const treeProblem = (value: unknown, root = ''): string | null =>
  treeIsClean(value, 0) ? null : firstTreeProblem(value, root);

/**
 * The common case of {@link treeProblem}: a clean tree, checked without building a path or an entry array per
 * node. Recursion is bounded: it stops at BOUNDS.depth.
 */
const treeIsClean = (v: unknown, depth: number): boolean => {
  if (typeof v === 'string') return isWellFormed(v);
  if (typeof v !== 'object' || v === null) return true;
  if (depth >= BOUNDS.depth) return false;
  if (Array.isArray(v)) {
    for (const x of v as unknown[]) if (!treeIsClean(x, depth + 1)) return false;
    return true;
  }
  const record = v as Record<string, unknown>;
  for (const k in record) {
    if (Object.hasOwn(record, k) && (!isWellFormed(k) || !treeIsClean(record[k], depth + 1))) return false;
  }
  return true;
};

/** Where a tree that is not clean breaks the rules, with the path to it. */
const firstTreeProblem = (value: unknown, root: string): string | null => {
  const stack: { v: unknown; path: string; depth: number }[] = [{ v: value, path: root, depth: 0 }];
  while (stack.length > 0) {
    const { v, path, depth } = stack.pop()!;
    const name = path === '' ? 'the request' : path;
    if (typeof v === 'string') {
      if (!isWellFormed(v)) return `${name} is not well-formed Unicode (it holds a lone surrogate)`;
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= BOUNDS.depth) return `${name} is nested deeper than ${BOUNDS.depth} levels`;
    if (Array.isArray(v)) {
      v.forEach((x, i) => stack.push({ v: x, path: `${path}[${i}]`, depth: depth + 1 }));
      continue;
    }
    for (const [k, x] of Object.entries(v)) {
      if (!isWellFormed(k)) return `a key of ${name} is not well-formed Unicode (it holds a lone surrogate)`;
      stack.push({ v: x, path: path === '' ? k : `${path}.${k}`, depth: depth + 1 });
    }
  }
  return null;
};

/**
 * Parses `input` with `schema`, or throws a BadRequest naming the first bad field. Every edge entry
 * goes through here, so the shared rules (well-formed text, bounded nesting) hold for every field,
 * known or not.
 */
export const parseInput = <S extends z.ZodType>(schema: S, input: unknown, root = ''): z.output<S> => {
  const problem = treeProblem(input, root);
  if (problem) throw new BadRequest(problem);
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const bare = issue.code === 'custom' && (issue.params as { bare?: boolean } | undefined)?.bare === true;
  const path = bare ? '' : fieldPath([...(root ? [root] : []), ...issue.path]);
  throw new BadRequest(path === '' ? issue.message : `${path} ${issue.message}`, statusOf(issue));
};

/** A custom refusal from a refinement: `ctx.addIssue(refuse('is …', 400, ['field']))`. */
export const refuse = (message: string, status: 400 | 422 = 422, path: PropertyKey[] = []) => ({
  code: 'custom' as const,
  message,
  path,
  params: { status },
});

const typeError =
  (what: string) =>
  (issue: { input?: unknown }): string =>
    issue.input === undefined ? 'is required' : `must be ${what}`;

/** A string (required). */
export const text = () => z.string({ error: typeError('a string') });

/** A string bounded in length; optional and `null` read as `''` (Go's zero value). */
export const optText = (max: number) =>
  z.preprocess(
    (v) => (v === null || v === undefined ? '' : v),
    text().max(max, { error: `is longer than ${max} characters` }),
  );

/** `true`/`false`; optional and `null` read as false. */
export const optBool = () =>
  z.preprocess((v) => (v === null || v === undefined ? false : v), z.boolean({ error: 'must be true or false' }));

/** Whole seconds from 0 to `max`; optional and `null` read as 0 (use the server default). */
export const optSeconds = (max: number) =>
  z.preprocess(
    (v) => (v === null || v === undefined ? 0 : v),
    z
      .number({ error: 'must be an integer' })
      .refine(Number.isInteger, { error: 'must be an integer', params: { status: 400 } })
      .refine((n) => n >= 0 && n <= max, { error: `must be between 0 and ${max} seconds` }),
  );

/** An identifier: non-empty, bounded, no control characters. */
export const ident = (max: number, label = 'it') =>
  text()
    .refine((s) => s !== '', { error: 'is required', params: { status: 400 } })
    .max(max, { error: `is longer than ${max} characters` })
    .refine((s) => !hasControl(s), { error: `has a control character, which ${label} may not hold` });

/** DTM strips these from gid and status (`dtmimp.Escape`); kept, as it is safe. */
const escapeGid = (s: string): string => s.replace(/[\n\r;]/g, '');

/** A gid: DTM's escape, then 1 to 128 characters, no control characters, not `$…` (the TM's own streams). */
export const gid = () =>
  text()
    .transform(escapeGid)
    .pipe(
      ident(BOUNDS.gid, 'a gid').refine((s) => !s.startsWith('$'), {
        error: "may not start with '$' (reserved for the TM's own streams)",
      }),
    );

/** Standard or URL-safe base64, as Go's protobuf JSON reads `bytes`. */
export const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;
/** Base64 text, normalized to standard base64 (padding added). */
export const base64 = () =>
  text()
    .refine((s) => BASE64.test(s) && s.replace(/=+$/, '').length % 4 !== 1, { error: 'must be base64 text' })
    .transform((s) => Buffer.from(s, 'base64').toString('base64'));

const UTF8 = new TextDecoder('utf-8', { fatal: true });
/** The UTF-8 text of base64 bytes, or `null` when the bytes are not UTF-8. */
export const utf8Of = (b64: string): string | null => {
  try {
    const s = UTF8.decode(Buffer.from(b64, 'base64'));
    return isWellFormed(s) ? s : null;
  } catch {
    return null;
  }
};

/**
 * Verdicts of recent URLs: a TM sees the same few RM URLs in every request, and parsing one costs more than the
 * rest of its checks. Bounded (URLs are the clients' choice): cleared when full.
 */
const urlVerdicts = new Map<string, string | null>();
const URL_VERDICTS_MAX = 4096;
/** Longer URLs are checked each time, so the cache stays within a few MB. */
const URL_CACHED_CHARS = 512;

/** The reason an http(s) URL is refused, or `null`: parsed, http or https, no user name or password. */
export const httpUrlProblem = (url: string): string | null => {
  if (url.length > URL_CACHED_CHARS) return parseHttpUrlProblem(url);
  let verdict = urlVerdicts.get(url);
  if (verdict === undefined) {
    if (urlVerdicts.size >= URL_VERDICTS_MAX) urlVerdicts.clear();
    verdict = parseHttpUrlProblem(url);
    urlVerdicts.set(url, verdict);
  }
  return verdict;
};

const parseHttpUrlProblem = (url: string): string | null => {
  if (url.length > BOUNDS.url) return `is longer than ${BOUNDS.url} characters`;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `is not a valid URL: ${url}`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `must be an http(s) URL: ${url}`;
  if (u.username !== '' || u.password !== '') return `may not carry a user name or password: ${u.host}${u.pathname}`;
  if (u.hostname === '') return `has no host: ${url}`;
  return null;
};

/**
 * A gRPC branch target as DTM writes it, `host:port/package.Service/Method`, optionally
 * `dns:///host:port/…`: the host a name or an address (IPv6 in brackets), a port, a method path.
 */
const GRPC_TARGET =
  /^(?:dns:\/\/\/)?(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\]):(\d{1,5})\/[A-Za-z_][A-Za-z0-9_.]{0,254}\/[A-Za-z_][A-Za-z0-9_]{0,254}$/;
export const grpcUrlProblem = (url: string): string | null => {
  const m = GRPC_TARGET.exec(url);
  if (!m) return `must be a gRPC target host:port/package.Service/Method: ${url.slice(0, 200)}`;
  const port = Number(m[1]);
  return port >= 1 && port <= 65535 ? null : `has port ${port}, outside 1 to 65535`;
};

/** An object whose values are all strings, as a fresh own-property object (no prototype tricks). */
export const stringMap = () =>
  z.preprocess(
    (v) => (v === null || v === undefined ? {} : v),
    z
      .custom<Record<string, unknown>>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), {
        error: 'must be an object of strings',
        params: { status: 400 },
      })
      .transform((o, ctx) => {
        const out: [string, string][] = [];
        for (const [k, v] of Object.entries(o)) {
          if (typeof v !== 'string') ctx.addIssue(refuse('must be a string', 400, [k]));
          else out.push([k, v]);
        }
        return Object.fromEntries(out);
      }),
  );

/**
 * Lower-cases the top-level keys of an object (Go's encoding/json matches keys case-insensitively;
 * DTM clients rely on snake_case) into an object without a prototype, and drops `null` values
 * (Go's zero value: as if absent). Anything else is left for the schema to refuse.
 */
const lowerKeys = (v: unknown): unknown => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
  const out = Object.create(null) as Record<string, unknown>;
  for (const [k, x] of Object.entries(v)) if (x !== null) out[k.toLowerCase()] = x;
  return out;
};

/** A request body: a JSON object, its keys matched case-insensitively. */
export const body = <S extends z.ZodType>(shape: S) =>
  z.preprocess((v, ctx) => {
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return lowerKeys(v);
    ctx.addIssue(refuse('request body must be a JSON object', 400));
    return z.NEVER;
  }, shape);
