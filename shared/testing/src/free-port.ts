import { createServer } from 'node:net';

/**
 * A TCP port on `host` that nobody listened on a moment ago: the OS picks it for a throwaway listener.
 * Another process may still take it before the caller binds it, so callers that can should retry.
 */
export const freePort = (host = '127.0.0.1'): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('the OS gave no port'))));
    });
  });
