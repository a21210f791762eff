import type { Protocol } from '../global-transaction/types';

/** A gRPC branch url split as DTM's default driver splits it: the channel target and the method path. */
export interface GrpcUrl {
  /** What the channel dials: `host:port`, or `dns:///host:port` when the url named the resolver. */
  readonly target: string;
  readonly host: string;
  readonly port: number;
  /** `/package.Service/Method`. */
  readonly method: string;
}

const GRPC_URL =
  /^(dns:\/\/\/)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?):(\d{1,5})(\/[A-Za-z_][A-Za-z0-9_.]*\/[A-Za-z_][A-Za-z0-9_]*)$/;

/**
 * Parses DTM's gRPC branch url `host:port/package.Service/Method` (also `dns:///host:port/…`, and `[v6]:port/…`);
 * null when `url` is not one.
 */
export const parseGrpcUrl = (url: string): GrpcUrl | null => {
  const m = GRPC_URL.exec(url);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  const host = m[2]!;
  return { target: `${m[1] ?? ''}${host}:${port}`, host, port, method: m[4]! };
};

/** True for an http:// or https:// url: DTM calls those over HTTP whatever the transaction's protocol (§3.1). */
export const isHttpUrl = (url: string): boolean => /^https?:\/\//i.test(url);

const utf8ToBase64 = (text: string): string => {
  let bin = '';
  for (const b of new TextEncoder().encode(text)) bin += String.fromCharCode(b);
  return btoa(bin);
};

/** Decodes standard or URL-safe base64, padded or not; a dangling last character is ignored (as Node's Buffer does). */
const base64ToUtf8 = (b64: string): string => {
  const clean = b64.replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
  const bin = atob(clean.length % 4 === 1 ? clean.slice(0, -1) : clean);
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
};

/**
 * A payload as a transaction of `protocol` stores it: gRPC keeps the base64 of the bytes, the others the text.
 * `binary`: `data` is base64 of bytes already (`bin_data`, `bin_payloads`); else it is text (DTM's `[]byte(s)`).
 */
export const storedPayload = (data: string, binary: boolean, protocol: Protocol): string => {
  if (protocol === 'grpc') return binary ? data : utf8ToBase64(data);
  return binary ? base64ToUtf8(data) : data;
};

/** The base64 of a stored payload's bytes, as DTM prints `bin_data` (§2.3). */
export const payloadBase64 = (data: string, protocol: Protocol): string =>
  protocol === 'grpc' ? data : utf8ToBase64(data);

/** True when `text` is JSON holding an object: the params of a JSON-RPC branch call. */
export const isJsonObject = (text: string): boolean => {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
};
