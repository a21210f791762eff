import { subscriberBranchId, TOPIC_SCHEME, type BranchDef, type Protocol, type TransDefinition } from '@dtm-ts/domain';
import {
  abortSchema,
  gidBodySchema,
  globalRequestSchema,
  registerBranchSchema,
  type Limits,
  type Registration,
} from '../edge/schemas';
import { parseInput } from '../edge/wire';
import { BadRequest } from './bad-request';

export type { Limits, Registration };
export { TOPIC_SCHEME };

/**
 * The request bodies of DTM's endpoints, parsed by their edge schemas (`../edge/schemas`). Each
 * either returns what the service decides on or throws a BadRequest naming the field; nothing is
 * written before it returns.
 */

/** A parsed `prepare`/`submit`/`prepareWorkflow`: the definition and the rows it stores. */
export interface ParsedGlobal {
  readonly definition: TransDefinition;
  readonly branches: BranchDef[];
}

const globalSchemas = new WeakMap<Limits, ReturnType<typeof globalRequestSchema>>();

/** `prepare`, `submit`, `prepareWorkflow` (rows as DTM generates them; `topic://` rows are expanded by the caller). */
export const parseGlobalRequest = (body: unknown, limits: Limits): ParsedGlobal => {
  let schema = globalSchemas.get(limits);
  if (!schema) globalSchemas.set(limits, (schema = globalRequestSchema(limits)));
  return parseInput(schema, body);
};

/** `abort`: `{gid, trans_type, rollback_reason?}`. */
export const parseAbort = (body: unknown) => parseInput(abortSchema, body);

/** `forceStop`, `resetNextCronTime`: `{gid}`. */
export const parseGidBody = (body: unknown): string => parseInput(gidBodySchema, body);

/** `registerBranch` and its aliases; the rows follow once the transaction's protocol is known (`registrationRows`). */
export const parseRegisterBranch = (body: unknown): Registration => parseInput(registerBranchSchema, body);

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
 * Every URL a parsed request makes the TM call or produce to (branch rows, `kafka://` topics included,
 * and the msg check-back or workflow callback), once each, in order. The one place an outbound policy
 * sees a request's URLs before anything is written.
 */
export const outboundUrlsOf = (
  req: { readonly definition?: TransDefinition; readonly branches: readonly BranchDef[] },
  protocol: Protocol = req.definition?.protocol ?? 'http',
): { url: string; protocol: Protocol }[] => {
  const urls = [...req.branches.map((b) => b.url), req.definition?.queryPrepared ?? ''];
  return [...new Set(urls)].filter((u) => u !== '' && !u.startsWith(TOPIC_SCHEME)).map((url) => ({ url, protocol }));
};
