import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';

/**
 * What the proxy does to traffic. `set` replaces the whole mode: `set({})` is a clean pass-through.
 * - `latencyMs` (+ up to `jitterMs`, uniform) delays every chunk in both directions; order is kept (a chunk never
 *   overtakes the one before it), as on a real slow link.
 * - `reset`: the probability that a new connection is reset (RST) at once instead of being forwarded.
 * - `blackhole`: connections are accepted and kept, but no byte moves either way until it is lifted. Bytes are held,
 *   not dropped: TCP retransmits what a black hole swallows, so once a real partition heals the stream carries on
 *   intact. Dropping them would corrupt the stream (a half Redis command), a fault no network produces. A client
 *   that gives up first (a timeout) closes or resets its connection as it would on a real partition.
 */
export type ProxyMode = { latencyMs?: number; jitterMs?: number; reset?: number; blackhole?: boolean };

/** A fault-injecting TCP proxy in front of one target; see {@link startFaultProxy}. */
export interface FaultProxy {
  /** Where clients connect instead of the target. */
  readonly port: number;
  readonly host: string;
  /** Replaces the mode; takes effect at once, also for bytes already held (a lifted black hole flushes). */
  set(mode: ProxyMode): void;
  /** Resets (RST) every open connection, on both sides: clients and target see ECONNRESET. */
  resetAll(): void;
  /** Stops listening and resets every open connection. */
  close(): Promise<void>;
}

export interface FaultProxyOptions {
  /** Port to listen on (default: one the system picks). Give the same one to a new proxy to keep an address. */
  readonly listenPort?: number;
  /** Address to listen on (default 127.0.0.1); e.g. a netns host's `hostIp`, to put a loopback-only server within its reach. */
  readonly listenHost?: string;
  /** Source of randomness for resets and jitter (default Math.random): a seeded one replays a chaos schedule. */
  readonly random?: () => number;
}

/** Held bytes above which the proxy stops reading a side (back-pressure), so a long black hole cannot exhaust memory. */
const HIGH_WATER_BYTES = 4 * 1024 * 1024;

/** An item of a direction's queue: bytes to write, or the peer's FIN to pass on once everything before it is written. */
type Held = { readonly at: number; readonly chunk: Buffer | 'end' };

/**
 * One direction of one connection: bytes read from `from` wait in order until their delivery time, then go to `to`.
 * While the proxy is a black hole nothing is delivered; once lifted, what waited goes in order.
 */
class Direction {
  private readonly queue: Held[] = [];
  private heldBytes = 0;
  /** Delivery time of the last queued item: a later chunk with a shorter delay still waits for it. */
  private lastAt = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly proxy: ProxyState,
  ) {
    from.on('data', (chunk: Buffer) => this.hold(chunk));
    from.on('end', () => this.hold('end'));
  }

  private hold(chunk: Buffer | 'end'): void {
    const at = Math.max(Date.now() + this.proxy.delayMs(), this.lastAt);
    this.lastAt = at;
    this.queue.push({ at, chunk });
    if (chunk !== 'end') {
      this.heldBytes += chunk.length;
      if (this.heldBytes > HIGH_WATER_BYTES) this.from.pause();
    }
    this.flush();
  }

  /** Writes every item that is due, then sleeps until the next one is. Called again when the mode changes. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.to.destroyed) {
      // Its reader is gone: nothing here can be delivered any more; keep reading so the sender is not stalled.
      this.queue.length = 0;
      this.heldBytes = 0;
      if (this.from.isPaused()) this.from.resume();
      return;
    }
    if (this.proxy.mode.blackhole) return;
    const now = Date.now();
    while (this.queue.length > 0 && this.queue[0]!.at <= now) {
      const { chunk } = this.queue.shift()!;
      if (chunk === 'end') {
        this.to.end();
        continue;
      }
      this.heldBytes -= chunk.length;
      this.to.write(chunk);
    }
    if (this.heldBytes <= HIGH_WATER_BYTES && this.from.isPaused()) this.from.resume();
    const next = this.queue[0];
    if (next) this.timer = setTimeout(() => this.flush(), next.at - now);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.queue.length = 0;
  }
}

interface ProxyState {
  mode: ProxyMode;
  delayMs(): number;
}

/** A proxied connection: the client's socket, the target's, and the two directions between them. */
class Connection {
  private readonly directions: Direction[];

  constructor(
    readonly client: Socket,
    readonly upstream: Socket,
    proxy: ProxyState,
    onClose: () => void,
  ) {
    this.directions = [new Direction(client, upstream, proxy), new Direction(upstream, client, proxy)];
    let closed = false;
    const finish = (): void => {
      if (closed) return;
      closed = true;
      for (const d of this.directions) d.stop();
      onClose();
    };
    // An error on one side is passed on as a reset of the other, as a middlebox that loses the connection does.
    // A clean close is not: each FIN travels in its direction's queue behind the bytes before it, and the
    // connection is done once both sockets have closed.
    for (const s of [client, upstream]) {
      s.on('error', () => {
        for (const other of [client, upstream]) if (!other.destroyed) other.resetAndDestroy();
        finish();
      });
      s.on('close', () => {
        if (client.destroyed && upstream.destroyed) finish();
      });
    }
  }

  flush(): void {
    for (const d of this.directions) d.flush();
  }

  reset(): void {
    for (const d of this.directions) d.stop();
    for (const s of [this.client, this.upstream]) if (!s.destroyed) s.resetAndDestroy();
  }
}

/**
 * Starts a TCP proxy to `target` that injects faults on command (see {@link ProxyMode}); a clean pass-through until
 * `set` says otherwise. Put it between the TM and what it talks to (RMs over HTTP, Redis, Kafka brokers through
 * their own proxy) and give clients its address. A target that refuses the connection shows to the client as a reset.
 */
export const startFaultProxy = async (
  target: { host: string; port: number },
  opts: FaultProxyOptions = {},
): Promise<FaultProxy> => {
  const random = opts.random ?? Math.random;
  const state: ProxyState = {
    mode: {},
    delayMs() {
      const { latencyMs = 0, jitterMs = 0 } = this.mode;
      return latencyMs + (jitterMs > 0 ? random() * jitterMs : 0);
    },
  };
  const connections = new Set<Connection>();

  const accept = (client: Socket): void => {
    if ((state.mode.reset ?? 0) > 0 && random() < state.mode.reset!) {
      client.resetAndDestroy();
      return;
    }
    client.setNoDelay(true);
    // The target is dialled at once even in a black hole: the held bytes, not the handshake, are the fault.
    const upstream = createConnection({ ...target, allowHalfOpen: true });
    upstream.setNoDelay(true);
    const conn = new Connection(client, upstream, state, () => connections.delete(conn));
    connections.add(conn);
  };

  const server = createServer({ allowHalfOpen: true, pauseOnConnect: false }, accept);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.listenPort ?? 0, opts.listenHost ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;

  const resetAll = (): void => {
    for (const c of connections) c.reset();
    connections.clear();
  };

  return {
    port: address.port,
    host: address.address,
    set(mode) {
      state.mode = { ...mode };
      for (const c of connections) c.flush();
    },
    resetAll,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      resetAll();
      await closed;
    },
  };
};
