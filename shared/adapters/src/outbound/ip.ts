import { isIPv4, isIPv6 } from 'node:net';

/** An IP address as a number, with its family. IPv4-mapped and NAT64 IPv6 forms are read as the IPv4 they carry. */
export interface Ip {
  readonly v: 4 | 6;
  readonly n: bigint;
}

/** A range of addresses: `bits` leading bits of `ip`. */
export interface Cidr {
  readonly ip: Ip;
  readonly bits: number;
}

const V4_MAPPED = 0xffff_0000_0000n; // ::ffff:0:0/96
const NAT64 = 0x0064_ff9b_0000_0000_0000_0000_0000_0000n; // 64:ff9b::/96
const LOW32 = 0xffff_ffffn;

const parseV4 = (s: string): bigint => s.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);

const parseV6 = (s: string): bigint => {
  let text = s;
  // A trailing dotted quad (::ffff:1.2.3.4) is the low 32 bits.
  let tail: bigint | null = null;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    tail = parseV4(text.slice(lastColon + 1));
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head = '', rest] = text.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = rest === undefined || rest === '' ? [] : rest.split(':');
  const zeros = rest === undefined ? 0 : 8 - left.length - right.length;
  const groups = [...left, ...Array<string>(zeros).fill('0'), ...right];
  let n = groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
  if (tail !== null) n = (n & ~LOW32) | tail;
  return n;
};

/**
 * Parses an IP literal (brackets and a zone id allowed), or null when `s` is not one. An IPv6 address that
 * carries an IPv4 one (`::ffff:169.254.169.254`, `::ffff:a9fe:a9fe`, NAT64 `64:ff9b::a9fe:a9fe`) is read as
 * that IPv4 address: connecting to it reaches the IPv4 host, so every rule must see it as such.
 */
export const parseIp = (raw: string): Ip | null => {
  let s = raw.startsWith('[') && raw.endsWith(']') ? raw.slice(1, -1) : raw;
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (isIPv4(s)) return { v: 4, n: parseV4(s) };
  if (!isIPv6(s)) return null;
  const n = parseV6(s);
  if (n >> 32n === V4_MAPPED >> 32n || n >> 32n === NAT64 >> 32n) return { v: 4, n: n & LOW32 };
  return { v: 6, n };
};

/** Parses `a.b.c.d/n` or `v6/n` (a bare address is the range of that one address), or null. */
export const parseCidr = (s: string): Cidr | null => {
  const slash = s.indexOf('/');
  const ip = parseIp(slash < 0 ? s : s.slice(0, slash));
  if (!ip) return null;
  const max = ip.v === 4 ? 32 : 128;
  if (slash < 0) return { ip, bits: max };
  const bitsText = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bitsText)) return null;
  let bits = Number(bitsText);
  // A v4-mapped range written in IPv6 (::ffff:a9fe:0/112) is the IPv4 range it maps.
  if (ip.v === 4 && !isIPv4(s.slice(0, slash))) bits -= 96;
  if (bits < 0 || bits > max) return null;
  return { ip, bits };
};

/** Whether `ip` lies in `range`. */
export const inCidr = (ip: Ip, range: Cidr): boolean => {
  if (ip.v !== range.ip.v) return false;
  const shift = BigInt((ip.v === 4 ? 32 : 128) - range.bits);
  return ip.n >> shift === range.ip.n >> shift;
};
