import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { freePort } from './free-port';

/** Options of a test Kafka cluster. */
export interface KafkaMockOptions {
  /** Brokers in the cluster (default 3). */
  readonly brokers?: number;
  /**
   * Put a Kafka-aware TCP proxy in front of every broker (default true). Needed by `kill`/`start` and
   * `cut`/`restore`, which must keep the addresses clients know; `false` gives the brokers' own addresses,
   * one hop fewer (benchmarks).
   */
  readonly proxy?: boolean;
  /**
   * Puts something in front of each broker's proxy (a fault-injecting TCP proxy, say): called once per broker with
   * its proxy's port, it returns the port clients should use instead. The brokers are then advertised at those
   * ports, so every connection a client makes, not only the bootstrap one, goes through them. Needs `proxy`.
   */
  readonly front?: (broker: number, proxyPort: number) => Promise<number>;
}

/**
 * librdkafka's mock cluster (a real Kafka wire-protocol server, inside `kcat`) owned by a test.
 *
 * The mock listens on ports of its own choosing and cannot be started again on the same ones, so by default
 * every broker sits behind a proxy on a fixed port. The proxy rewrites the broker addresses in Metadata and
 * FindCoordinator answers to its own, so clients never learn the brokers' real ports: that is what lets a
 * killed cluster come back at the same addresses, and lets a test cut the network.
 */
export interface KafkaMock {
  /** `host:port` of each broker as clients should use them. */
  readonly brokers: readonly string[];
  /** The same, comma-separated: a KAFKA_BROKERS value. */
  readonly bootstrap: string;
  /**
   * SIGKILLs the cluster, as a crash: open connections drop and new ones are refused. Its topics, records
   * and consumer-group offsets are gone with it (the mock keeps them in memory only).
   */
  kill(): Promise<void>;
  /** Starts a fresh cluster behind the same addresses after `kill`; resolves once it serves. No-op while running. */
  start(): Promise<void>;
  /**
   * A network outage: every open connection is reset and new ones are refused, while the cluster keeps
   * running with its data, as a real broker keeps its log on disk across a restart.
   */
  cut(): Promise<void>;
  /** Ends an outage begun by `cut`. */
  restore(): Promise<void>;
  /** Kills the cluster and closes the proxies for good. */
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 15_000;

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** No mock may outlive the test process (see redis-server.ts for why signals as well as 'exit'). */
const installExitHook = (): void => {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const cleanUp = (): void => {
    for (const child of running) child.kill('SIGKILL');
    running.clear();
  };
  process.on('exit', cleanUp);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanUp();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
};

interface Cluster {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  /** The brokers' own addresses, in broker-id order. */
  readonly addresses: { host: string; port: number }[];
}

/** Runs `kcat` with the mock cluster and resolves with the addresses it printed. */
const launch = (brokers: number): Promise<Cluster> =>
  new Promise((resolve, reject) => {
    // -q: no per-partition EOF notices. The consumer of `boot` only keeps kcat (and the mock) alive.
    const args = ['-C', '-q', '-t', 'boot', '-b', 'localhost:1', '-X', `test.mock.num.brokers=${brokers}`];
    const child = spawn('kcat', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    let err = '';
    let settled = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`kcat mock cluster printed no bootstrap.servers in ${READY_TIMEOUT_MS} ms:\n${err}`));
    }, READY_TIMEOUT_MS);
    const fail = (e: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(e);
    };
    child.stderr?.on('data', (chunk: Buffer) => {
      err = (err + chunk.toString('utf8')).slice(-4_000);
      // "%5|…|MOCK|…: Mock cluster enabled: … replaced with 127.0.0.1:41553,127.0.0.1:39041,…"
      const m = /replaced with (\S+)/.exec(err);
      if (!m || settled) return;
      settled = true;
      clearTimeout(timer);
      const addresses = m[1]!.split(',').map((a) => {
        const i = a.lastIndexOf(':');
        return { host: a.slice(0, i), port: Number(a.slice(i + 1)) };
      });
      resolve({ child, exited, addresses });
    });
    child.once('exit', (code, signal) => {
      running.delete(child);
      fail(new Error(`kcat exited (${signal ?? code}) before the mock cluster was up:\n${err}`));
    });
    child.once('error', (e: NodeJS.ErrnoException) => {
      running.delete(child);
      fail(e.code === 'ENOENT' ? new Error('kcat not found: apt-get install -y kcat') : e);
    });
    child.once('spawn', () => running.add(child));
  });

const terminate = async (cluster: Cluster | null): Promise<void> => {
  if (!cluster || cluster.child.exitCode !== null || cluster.child.signalCode !== null) return;
  cluster.child.kill('SIGKILL');
  await cluster.exited;
};

// Kafka API keys whose answers carry broker addresses.
const API_METADATA = 3;
const API_FIND_COORDINATOR = 10;
/** First version of each that uses the flexible (compact) encoding, which the proxy does not rewrite. */
const FLEXIBLE_FROM: Readonly<Record<number, number>> = { [API_METADATA]: 9, [API_FIND_COORDINATOR]: 3 };

/** Offset just past a STRING / NULLABLE_STRING (int16 length, -1 for null) at `o`. */
const skipString = (b: Buffer, o: number): number => o + 2 + Math.max(0, b.readInt16BE(o));

/**
 * Replaces each broker port in a Metadata or FindCoordinator response frame (size prefix included) by
 * `map(port)`. Ports are fixed-width, so the frame keeps its length and the rest is untouched.
 */
const rewriteAddresses = (frame: Buffer, apiKey: number, version: number, map: (port: number) => number): Buffer => {
  const out = Buffer.from(frame);
  let o = 8; // size, correlation id
  const patchPort = (): void => {
    out.writeInt32BE(map(out.readInt32BE(o)), o);
    o += 4;
  };
  if (apiKey === API_METADATA) {
    if (version >= 3) o += 4; // throttle_time_ms
    const n = out.readInt32BE(o);
    o += 4;
    for (let i = 0; i < n; i++) {
      o += 4; // node_id
      o = skipString(out, o); // host
      patchPort();
      if (version >= 1) o = skipString(out, o); // rack
    }
  } else {
    if (version >= 1) o += 4; // throttle_time_ms
    o += 2; // error_code
    if (version >= 1) o = skipString(out, o); // error_message
    o += 4; // node_id
    o = skipString(out, o); // host
    patchPort();
  }
  return out;
};

/** Splits a byte stream into Kafka frames (int32 size prefix), handing each complete one to `onFrame`. */
const framer = (onFrame: (frame: Buffer) => void): ((chunk: Buffer) => void) => {
  let buf: Buffer = Buffer.alloc(0);
  return (chunk) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    while (buf.length >= 4) {
      const end = 4 + buf.readInt32BE(0);
      if (buf.length < end) break;
      onFrame(buf.subarray(0, end));
      buf = buf.subarray(end);
    }
  };
};

/** One proxied broker: listens on `port`, forwards to whatever the cluster's broker `index` is now. */
class BrokerProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  constructor(
    readonly port: number,
    private readonly upstream: () => { host: string; port: number } | undefined,
    private readonly mapPort: (port: number) => number,
  ) {}

  listen(): Promise<void> {
    if (this.server) return Promise.resolve();
    const server = createServer((client) => this.accept(client));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  /** Stops listening and resets every open connection. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.resetAndDestroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    const target = this.upstream();
    if (!target) {
      client.resetAndDestroy();
      return;
    }
    const broker = createConnection(target);
    client.setNoDelay(true);
    broker.setNoDelay(true);
    this.sockets.add(client);
    this.sockets.add(broker);
    // Correlation id → request, to know how to read each answer.
    const pending = new Map<number, { apiKey: number; version: number }>();
    const drop = (): void => {
      this.sockets.delete(client);
      this.sockets.delete(broker);
      if (!client.destroyed) client.resetAndDestroy();
      if (!broker.destroyed) broker.destroy();
    };
    client.on(
      'data',
      framer((frame) => {
        const apiKey = frame.readInt16BE(4);
        if (apiKey === API_METADATA || apiKey === API_FIND_COORDINATOR) {
          pending.set(frame.readInt32BE(8), { apiKey, version: frame.readInt16BE(6) });
        }
        broker.write(frame);
      }),
    );
    broker.on(
      'data',
      framer((frame) => {
        const req = pending.get(frame.readInt32BE(4));
        if (!req) {
          client.write(frame);
          return;
        }
        pending.delete(frame.readInt32BE(4));
        if (req.version >= FLEXIBLE_FROM[req.apiKey]!) {
          // Clients that speak it would learn the real ports and bypass the proxy: fail loudly instead.
          client.destroy(new Error(`kafka-mock proxy cannot rewrite api ${req.apiKey} v${req.version}`));
          drop();
          return;
        }
        client.write(rewriteAddresses(frame, req.apiKey, req.version, this.mapPort));
      }),
    );
    client.on('error', drop);
    broker.on('error', drop);
    client.on('close', drop);
    broker.on('close', drop);
  }
}

/** Listens on free ports, retrying a few times if one is taken between probing and binding. */
const bindProxies = async (n: number, make: (port: number, index: number) => BrokerProxy): Promise<BrokerProxy[]> => {
  const out: BrokerProxy[] = [];
  for (let i = 0; i < n; i++) {
    for (let attempt = 1; ; attempt++) {
      const proxy = make(await freePort(), i);
      try {
        await proxy.listen();
        out.push(proxy);
        break;
      } catch (err) {
        if (attempt >= 3) throw err;
      }
    }
  }
  return out;
};

/**
 * Starts librdkafka's mock cluster through `kcat` (Debian/Ubuntu: `apt-get install -y kcat`) and, unless
 * `proxy: false`, a proxy per broker on 127.0.0.1. Topics are created on first use. The cluster is killed
 * when the test process exits, if not stopped before. Known limits of the mock: it reports controller id 0,
 * so admin createTopics and the idempotent producer do not work.
 */
export const startKafkaMock = async (opts: KafkaMockOptions = {}): Promise<KafkaMock> => {
  installExitHook();
  const n = opts.brokers ?? 3;
  let cluster: Cluster | null = await launch(n);
  if (opts.proxy === false) {
    const brokers = cluster.addresses.map((a) => `${a.host}:${a.port}`);
    const unsupported = (): Promise<void> =>
      Promise.reject(new Error('kill/start/cut/restore need startKafkaMock({ proxy: true })'));
    return {
      brokers,
      bootstrap: brokers.join(','),
      kill: unsupported,
      start: unsupported,
      cut: unsupported,
      restore: unsupported,
      stop: () => terminate(cluster),
    };
  }

  let proxies: BrokerProxy[] = [];
  let advertised: number[] = [];
  const mapPort = (port: number): number => {
    const i = cluster?.addresses.findIndex((a) => a.port === port) ?? -1;
    return advertised[i] ?? port;
  };
  proxies = await bindProxies(n, (port, i) => new BrokerProxy(port, () => cluster?.addresses[i], mapPort));
  const front = opts.front;
  advertised = front ? await Promise.all(proxies.map((p, i) => front(i, p.port))) : proxies.map((p) => p.port);
  const isRunning = (): boolean => !!cluster && cluster.child.exitCode === null && cluster.child.signalCode === null;
  let cutOff = false;
  const listenAll = async (): Promise<void> => {
    for (const p of proxies) await p.listen();
  };
  const closeAll = async (): Promise<void> => {
    await Promise.all(proxies.map((p) => p.close()));
  };

  const brokers = advertised.map((port) => `127.0.0.1:${port}`);
  return {
    brokers,
    bootstrap: brokers.join(','),
    async kill() {
      await closeAll();
      await terminate(cluster);
      cluster = null;
    },
    async start() {
      if (isRunning()) return;
      cluster = await launch(n);
      if (!cutOff) await listenAll();
    },
    async cut() {
      cutOff = true;
      await closeAll();
    },
    async restore() {
      cutOff = false;
      if (isRunning()) await listenAll();
    },
    async stop() {
      await closeAll();
      await terminate(cluster);
      cluster = null;
    },
  };
};
