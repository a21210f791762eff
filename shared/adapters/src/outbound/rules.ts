import { inCidr, parseCidr, type Cidr, type Ip } from './ip';

/** Where a call goes, as far as it is known: the name in the URL (null for an IP literal), the address, the port. */
export interface Target {
  readonly name: string | null;
  readonly ip: Ip | null;
  readonly port: number;
}

type Matcher =
  | { readonly kind: 'any' }
  | { readonly kind: 'cidr'; readonly cidr: Cidr }
  | { readonly kind: 'name'; readonly name: string }
  | { readonly kind: 'suffix'; readonly suffix: string };

/** One entry of OUTBOUND_ALLOW or OUTBOUND_DENY, as written. */
export interface Rule {
  readonly text: string;
  readonly match: Matcher;
  /** Only this port (the entry was `host:port`); undefined: every port. */
  readonly port: number | undefined;
}

/** An entry of a list that cannot be read. */
export class OutboundRuleError extends Error {
  override readonly name = 'OutboundRuleError';
}

const HOST_NAME = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/;

/** A host name as matched: lower case, without the trailing dot of a fully qualified name. */
export const normalizeName = (name: string): string => name.toLowerCase().replace(/\.$/, '');

const parsePort = (text: string, entry: string, what: string): number => {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) throw new OutboundRuleError(`${what}: '${entry}' has no valid port`);
  return port;
};

const parseMatcher = (body: string, entry: string, what: string): Matcher => {
  if (body === '*') return { kind: 'any' };
  const cidr = parseCidr(body);
  if (cidr) return { kind: 'cidr', cidr };
  if (body.includes('/') || body.includes(':')) throw new OutboundRuleError(`${what}: '${entry}' is not a valid CIDR`);
  const name = normalizeName(body);
  if (name.startsWith('.') && HOST_NAME.test(name.slice(1))) return { kind: 'suffix', suffix: name };
  if (HOST_NAME.test(name)) return { kind: 'name', name };
  throw new OutboundRuleError(`${what}: '${entry}' is neither a host, a .suffix, a CIDR nor *`);
};

/**
 * Reads a comma-separated list of hosts (`rm.internal`), domain suffixes (`.corp.example`, every name under it),
 * CIDRs (`10.0.0.0/8`, `fd00::/8`, a bare address), or `*`, each optionally with `:port` (`[v6]:port` for IPv6).
 *
 * @throws {@link OutboundRuleError} naming the first entry that cannot be read
 */
export const parseRules = (raw: string | undefined, what: string): Rule[] => {
  const rules: Rule[] = [];
  for (const part of (raw ?? '').split(',')) {
    const entry = part.trim();
    if (entry === '') continue;
    let body = entry;
    let port: number | undefined;
    if (entry.startsWith('[')) {
      const close = entry.indexOf(']');
      if (close < 0) throw new OutboundRuleError(`${what}: '${entry}' lacks its ']'`);
      body = entry.slice(1, close);
      const rest = entry.slice(close + 1);
      if (rest !== '') {
        if (!rest.startsWith(':')) throw new OutboundRuleError(`${what}: '${entry}' has text after ']'`);
        port = parsePort(rest.slice(1), entry, what);
      }
    } else if (entry.split(':').length === 2) {
      const colon = entry.indexOf(':');
      body = entry.slice(0, colon);
      port = parsePort(entry.slice(colon + 1), entry, what);
    }
    rules.push({ text: entry, match: parseMatcher(body, entry, what), port });
  }
  return rules;
};

/** Whether `rule` covers `t`: names match name entries, addresses match CIDRs, `*` matches all. */
export const ruleMatches = (rule: Rule, t: Target): boolean => {
  if (rule.port !== undefined && rule.port !== t.port) return false;
  const m = rule.match;
  switch (m.kind) {
    case 'any':
      return true;
    case 'cidr':
      return t.ip !== null && inCidr(t.ip, m.cidr);
    case 'name':
      return t.name === m.name;
    case 'suffix':
      return t.name !== null && t.name.endsWith(m.suffix);
    default: {
      const unhandled: never = m;
      throw new Error(`unknown matcher ${String(unhandled)}`);
    }
  }
};

/** `*`, `0.0.0.0/0`, `::/0`: entries that match everything, and so never lift a built-in denial. */
export const isCatchAll = (rule: Rule): boolean =>
  rule.match.kind === 'any' || (rule.match.kind === 'cidr' && rule.match.cidr.bits === 0);

/** Ranges denied by default: cloud metadata and link-local addresses, and the unspecified ones. */
const BUILT_IN: readonly { readonly cidr: Cidr; readonly why: string }[] = [
  ['169.254.0.0/16', 'a link-local address (cloud metadata lives there)'],
  ['fe80::/10', 'a link-local address'],
  ['fd00:ec2::254', 'the AWS metadata address'],
  ['100.100.100.200', 'the Alibaba Cloud metadata address'],
  ['0.0.0.0/8', 'an unspecified address (it reaches this host)'],
  ['::', 'an unspecified address (it reaches this host)'],
].map(([text, why]) => ({ cidr: parseCidr(text!)!, why: why! }));

/** Names denied by default. */
const BUILT_IN_NAMES: ReadonlyMap<string, string> = new Map([
  ['metadata.google.internal', 'the Google Cloud metadata server'],
  ['metadata.goog', 'the Google Cloud metadata server'],
]);

/** Why `t` is in the built-in denied set, or null. */
export const builtInDenial = (t: Target): string | null => {
  if (t.name !== null) {
    const why = BUILT_IN_NAMES.get(t.name);
    if (why) return why;
  }
  if (t.ip === null) return null;
  const ip = t.ip;
  return BUILT_IN.find((b) => inCidr(ip, b.cidr))?.why ?? null;
};

const LOOPBACK = [parseCidr('127.0.0.0/8')!, parseCidr('::1')!];

/** Whether `ip` is a loopback address. */
export const isLoopback = (ip: Ip): boolean => LOOPBACK.some((c) => inCidr(ip, c));
