import type { IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';

/**
 * One scripted answer: a bare status (with DTM's usual body), a status with an explicit body and
 * an optional delay before answering, or `'hang'`: never answer.
 */
export type Reply = 200 | 409 | 425 | 500 | { status: number; body?: string; delayMs?: number } | 'hang';

/** A request as the peer received it; `path` has no leading slash, like the one given to `url`. */
export interface RecordedCall {
  readonly path: string;
  readonly method: string;
  readonly query: Record<string, string>;
  readonly body: string;
  readonly headers: IncomingHttpHeaders;
  readonly at: number;
}

/** A scripted RM on 127.0.0.1 for tests. */
export interface BranchPeer {
  /** `http://127.0.0.1:<port>/<path>`. */
  url(path: string): string;
  /** Every request received, in arrival order. */
  readonly calls: RecordedCall[];
  callsTo(path: string): RecordedCall[];
  /** Replies for `path`, consumed in order; the last one repeats forever. */
  script(path: string, replies: Reply[]): void;
  /** Forgets calls and scripts. */
  reset(): void;
  /** Stops the server, cutting hanging requests. */
  close(): Promise<void>;
}

const DEFAULT_BODIES: Readonly<Record<number, string>> = {
  200: '{"dtm_result":"SUCCESS"}',
  409: '{"dtm_result":"FAILURE"}',
  425: '{"dtm_result":"ONGOING"}',
  500: '{"message":"boom"}',
};

const trimSlash = (path: string): string => (path.startsWith('/') ? path.slice(1) : path);

/** Starts a peer on an ephemeral port. Unscripted paths answer 200 `{"dtm_result":"SUCCESS"}`. */
export const startBranchPeer = async (): Promise<BranchPeer> => {
  const calls: RecordedCall[] = [];
  const scripts = new Map<string, Reply[]>();

  const app = express();
  // Raw text whatever the content type, so tests see exactly the bytes the TM sent.
  app.use(express.text({ type: '*/*', limit: '16mb' }));
  app.use((req, res) => {
    const path = trimSlash(req.path);
    calls.push({
      path,
      method: req.method,
      query: Object.fromEntries(new URL(req.originalUrl, 'http://peer').searchParams),
      body: typeof req.body === 'string' ? req.body : '',
      headers: req.headers,
      at: Date.now(),
    });
    const queue = scripts.get(path);
    // Consume in order but keep the last reply: it repeats forever.
    const reply: Reply = (queue && (queue.length > 1 ? queue.shift() : queue[0])) ?? 200;
    if (reply === 'hang') return;
    const { status, body, delayMs } =
      typeof reply === 'number' ? { status: reply, body: undefined, delayMs: 0 } : reply;
    const send = (): void => {
      res
        .status(status)
        .type('application/json')
        .send(body ?? DEFAULT_BODIES[status] ?? '');
    };
    if (delayMs) setTimeout(send, delayMs);
    else send();
  });

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: (path) => `http://127.0.0.1:${port}/${trimSlash(path)}`,
    calls,
    callsTo: (path) => calls.filter((c) => c.path === trimSlash(path)),
    script: (path, replies) => {
      if (replies.length === 0) throw new Error('script needs at least one reply');
      scripts.set(trimSlash(path), [...replies]);
    },
    reset: () => {
      calls.length = 0;
      scripts.clear();
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Hanging requests and idle keep-alive sockets would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
};
