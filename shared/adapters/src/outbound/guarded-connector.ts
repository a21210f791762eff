import type { LookupAddress, LookupAllOptions, LookupOneOptions } from 'node:dns';
import { isIP } from 'node:net';
import { buildConnector } from 'undici';
import type { OutboundPolicy, ResolvedAddress } from './outbound-policy';

type LookupCallback = (err: Error | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for `net.connect`/`tls.connect` that answers only with addresses the policy allows for `port`, so
 * the socket connects to exactly the addresses that were checked (no second resolution between check and use).
 */
const guardedLookup =
  (policy: OutboundPolicy, port: number) =>
  (hostname: string, options: LookupOneOptions | LookupAllOptions, callback: LookupCallback): void => {
    policy.resolveAllowed(hostname, port).then(
      (all) => {
        const family = options.family === 4 || options.family === 6 ? options.family : 0;
        const fit: ResolvedAddress[] = family === 0 ? [...all] : all.filter((a) => a.family === family);
        if (options.all) return callback(null, fit);
        const first = fit[0];
        if (!first)
          return callback(
            Object.assign(new Error(`no IPv${family} address for ${hostname}`), { code: 'ENOTFOUND' }),
            '',
          );
        callback(null, first.address, first.family);
      },
      (err: unknown) => callback(err as Error, ''),
    );
  };

/** Most per-port connectors kept (RMs listen on a handful of ports). */
const CONNECTORS_MAX = 256;

/**
 * An undici connector that checks every connection against the outbound policy before connecting: an IP literal
 * as it is, a name on every address it resolves to. A refusal fails the connection with
 * {@link OutboundRefused}, which the transport reports as an error outcome.
 */
export const guardedConnector = (
  policy: OutboundPolicy,
  base: buildConnector.BuildOptions = {},
): buildConnector.connector => {
  // `lookup` cannot see the port, so each port gets its own connector (and TLS session cache).
  const byPort = new Map<number, buildConnector.connector>();
  return (opts, callback) => {
    const port = opts.port ? Number(opts.port) : opts.protocol === 'https:' ? 443 : 80;
    if (isIP(opts.hostname)) {
      // Sockets skip `lookup` for an IP literal: check it here.
      policy.resolveAllowed(opts.hostname, port).then(
        () => connectorFor(byPort, policy, base, port)(opts, callback),
        (err: unknown) => callback(err as Error, null),
      );
      return;
    }
    connectorFor(byPort, policy, base, port)(opts, callback);
  };
};

const connectorFor = (
  byPort: Map<number, buildConnector.connector>,
  policy: OutboundPolicy,
  base: buildConnector.BuildOptions,
  port: number,
): buildConnector.connector => {
  let c = byPort.get(port);
  if (!c) {
    if (byPort.size >= CONNECTORS_MAX) byPort.clear();
    c = buildConnector({ ...base, lookup: guardedLookup(policy, port) });
    byPort.set(port, c);
  }
  return c;
};
