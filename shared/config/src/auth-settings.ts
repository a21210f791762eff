import { isIP } from 'node:net';

/** What a caller may do: `client` (the AP endpoints) or `admin` (everything; admin implies client). */
export type Scope = 'client' | 'admin';
const SCOPES: readonly string[] = ['client', 'admin'];

/** One API token and its scope. */
export interface ApiToken {
  readonly token: string;
  readonly scope: Scope;
}

/** A network whose callers need no token, and the scope they get. */
export interface TrustedNet {
  readonly address: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
  readonly scope: Scope;
}

/** A bearer token (RFC 6750 token68), 16 to 512 characters; no `,`, `:` or spaces, so lists stay parsable. */
const TOKEN = /^[A-Za-z0-9._~+/-]{16,512}=*$/;

/**
 * Parses `<token>:<scope>,…` (API_TOKENS) or the same one per line (API_TOKENS_FILE, `#` comments).
 * Errors name the entry by position, never by its value: a token must not reach a log.
 */
export const parseApiTokens = (spec: string): ApiToken[] => {
  const entries = spec
    .split(/[,\n]/)
    .map((l) => l.replace(/#.*$/, '').trim())
    .filter((l) => l !== '');
  return entries.map((entry, i) => {
    const at = entry.lastIndexOf(':');
    const token = at < 0 ? entry : entry.slice(0, at);
    const scope = at < 0 ? '' : entry.slice(at + 1).trim();
    if (!SCOPES.includes(scope)) throw new Error(`entry ${i + 1}: expected <token>:client or <token>:admin`);
    if (!TOKEN.test(token.trim())) {
      throw new Error(`entry ${i + 1}: a token is 16 to 512 of A-Z a-z 0-9 . _ ~ + / - (then optional =)`);
    }
    return { token: token.trim(), scope: scope as Scope };
  });
};

/** Parses `<cidr or address>[=<scope>],…` (API_TRUSTED_NETS); the scope defaults to client. */
export const parseTrustedNets = (spec: string): TrustedNet[] =>
  spec
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((entry) => {
      const [net = '', scopeRaw = 'client', ...rest] = entry.split('=');
      const scope = scopeRaw.trim();
      if (rest.length > 0 || !SCOPES.includes(scope)) throw new Error(`'${entry}': expected <cidr>[=client|=admin]`);
      const [address = '', prefixRaw, ...more] = net.trim().split('/');
      const v = isIP(address);
      if (v === 0 || more.length > 0) throw new Error(`'${entry}': '${address}' is not an IPv4 or IPv6 address`);
      const max = v === 4 ? 32 : 128;
      const prefix = prefixRaw === undefined ? max : Number(prefixRaw);
      if (!/^\d{1,3}$/.test(prefixRaw ?? String(max)) || prefix > max) {
        throw new Error(`'${entry}': the prefix length must be 0 to ${max}`);
      }
      return { address, prefix, family: v === 4 ? 'ipv4' : 'ipv6', scope: scope as Scope };
    });
