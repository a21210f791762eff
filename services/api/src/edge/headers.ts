import type { Protocol } from '@dtm-ts/domain';
import { BOUNDS } from './wire';

/** RFC 9110 field name: a token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** gRPC metadata keys (grpc-js refuses anything else). */
const GRPC_KEY = /^[0-9a-z_.-]+$/;
/** A clean field value: visible ASCII, space and tab (no CR, LF, NUL, other controls or non-ASCII). */
const VALUE = /^[\t\x20-\x7e]*$/;
/** gRPC ASCII metadata values: visible ASCII and space. */
const GRPC_VALUE = /^[\x20-\x7e]*$/;

/**
 * Names a branch call may not carry: hop-by-hop fields (RFC 9110 §7.6.1), the ones the HTTP client
 * owns (Host, Content-Length, Expect, which undici refuses), and prototype keys.
 */
const FORBIDDEN = new Set([
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'expect',
  '__proto__',
]);

/**
 * Why a `branch_headers` object cannot be sent with every branch call, or `null`. Checked at the edge
 * because a header the transport refuses would fail every call of the transaction, for ever.
 */
export const branchHeadersProblem = (
  headers: Readonly<Record<string, string>>,
  protocol: Protocol,
): { key: string; message: string } | null => {
  const entries = Object.entries(headers);
  if (entries.length > BOUNDS.headerCount) {
    return { key: '', message: `has ${entries.length} headers, more than ${BOUNDS.headerCount}` };
  }
  let size = 0;
  const seen = new Set<string>();
  for (const [name, value] of entries) {
    const lower = name.toLowerCase();
    const refuse = (message: string) => ({ key: name, message });
    if (!TOKEN.test(name)) return refuse('is not a valid header name (RFC 9110 token characters only)');
    if (FORBIDDEN.has(lower) || lower.startsWith('proxy-')) return refuse('is a header the TM does not forward');
    if (seen.has(lower)) return refuse('repeats a header name given in another case');
    seen.add(lower);
    if (protocol === 'grpc') {
      if (!GRPC_KEY.test(lower) || lower.startsWith('grpc-') || lower.endsWith('-bin')) {
        return refuse('is not a gRPC metadata key (a-z 0-9 _ . -, not grpc-* or *-bin)');
      }
      if (!GRPC_VALUE.test(value)) return refuse('has a value that is not printable ASCII');
    } else if (!VALUE.test(value)) {
      return refuse('has a value with a character other than printable ASCII, space or tab (CR, LF, NUL, …)');
    }
    size += name.length + value.length;
  }
  if (size > BOUNDS.headerBytes) return { key: '', message: `are ${size} bytes, more than ${BOUNDS.headerBytes}` };
  return null;
};
