import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Ports tried after METRICS_PORT when it is taken (another worker on the same host): METRICS_PORT + 1 … + this. */
export const METRICS_PORT_TRIES = 10;

export interface MetricsServer {
  /** The port it listens on. */
  readonly port: number;
  close(): Promise<void>;
}

const listen = (server: Server, port: number, host: string): Promise<'listening' | 'in-use'> =>
  new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      if (err.code === 'EADDRINUSE') resolve('in-use');
      else reject(err);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve('listening');
    };
    server.once('error', onError);
    server.once('listening', onListening);
    // Exclusive: in a node:cluster process, a plain listen would share the primary's socket instead of failing.
    server.listen({ port, host, exclusive: true });
  });

/**
 * A worker's own GET /metrics. Several workers on one host share METRICS_PORT's default: when the port is taken,
 * it takes the next free one of the following {@link METRICS_PORT_TRIES}; when all are taken, it serves none and
 * says so through `warn`, rather than stopping the worker. Resolves to null then, and when `port` is 0 (none).
 */
export const startMetricsServer = async (
  opts: { port: number; host: string; warn: (fields: Record<string, unknown>, msg: string) => void },
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<MetricsServer | null> => {
  if (opts.port === 0) return null;
  const server = createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/metrics' || req.url === '/api/metrics')) handle(req, res);
    else res.writeHead(404).end();
  });
  const last = Math.min(65535, opts.port + METRICS_PORT_TRIES);
  for (let port = opts.port; port <= last; port++) {
    if ((await listen(server, port, opts.host)) === 'in-use') continue;
    if (port !== opts.port)
      opts.warn({ wanted: opts.port, port }, 'METRICS_PORT is taken; serving metrics on the next free port');
    return {
      port: (server.address() as AddressInfo).port,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  }
  opts.warn(
    { from: opts.port, to: last },
    'METRICS_PORT and the ports after it are taken; this worker serves no metrics',
  );
  return null;
};
