import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port';

/** Options of a test Redis. */
export interface RedisOptions {
  /** Keep an append-only file, so data survives `stop`/`kill` and `start`. Default false. */
  readonly appendonly?: boolean;
  /** AOF fsync policy; `always` loses nothing on `kill`. Default `everysec`. */
  readonly appendfsync?: 'always' | 'everysec';
  /** More `redis-server` arguments (the cluster harness's `--cluster-enabled yes …`). */
  readonly extraArgs?: readonly string[];
  /** Listen on this 127.0.0.1 port (default: a free one, retried if taken meanwhile). */
  readonly port?: number;
}

/** A `redis-server` child process owned by a test. */
export interface RedisProcess {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Its working directory (AOF files), removed when the test process exits. */
  readonly dir: string;
  /** SIGTERM (Redis flushes the AOF and exits), resolves once it exited. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash; resolves once it exited. */
  kill(): Promise<void>;
  /** Starts it again on the same port and directory; resolves once it answers PING. No-op while running. */
  start(): Promise<void>;
}

const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;

const running = new Set<ChildProcess>();
const dirs = new Set<string>();
let exitHookInstalled = false;

const cleanUp = (): void => {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
  for (const dir of dirs) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // A temp dir left behind is not worth failing an exiting process for.
    }
  }
  dirs.clear();
};

/**
 * No Redis may outlive the test process, even when afterAll hooks do not run (a timeout, a crash). Vitest ends
 * its fork workers with SIGTERM, which skips 'exit' handlers: clean up on the usual signals too, then let the
 * signal do what it would have done.
 */
const installExitHook = (): void => {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', cleanUp);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanUp();
      // Others listening decide what the signal means; alone, re-raise it for its default action.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
};

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** One PING over a raw socket: true on +PONG; false on no connection or an error reply (LOADING while the AOF loads). */
const ping = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });

interface Running {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  /** Last lines of its output, for error messages. */
  readonly output: () => string;
}

const launch = (port: number, dir: string, opts: RedisOptions): Promise<Running> =>
  new Promise((resolve, reject) => {
    const args = [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--dir', dir,
      '--save', '',
      '--appendonly', opts.appendonly ? 'yes' : 'no',
      '--appendfsync', opts.appendfsync ?? 'everysec',
      '--daemonize', 'no',
      ...(opts.extraArgs ?? []),
    ]; // prettier-ignore
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const keep = (chunk: Buffer): void => {
      // Read everything (a full pipe would stall Redis), keep the tail.
      log = (log + chunk.toString('utf8')).slice(-4_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    child.once('exit', () => running.delete(child));
    child.once('error', (err: NodeJS.ErrnoException) => {
      running.delete(child);
      reject(err.code === 'ENOENT' ? new Error('redis-server not found: apt-get install -y redis-server') : err);
    });
    child.once('spawn', () => {
      running.add(child);
      resolve({ child, exited, output: () => log });
    });
  });

/** Waits until Redis on `port` answers PING, failing fast if the process exits first. */
const waitReady = async (port: number, proc: Running): Promise<void> => {
  let gone = false;
  void proc.exited.then(() => (gone = true));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (gone) throw new Error(`redis-server on port ${port} exited while starting:\n${proc.output()}`);
    if (await ping(port)) return;
    await sleep(25);
  }
  proc.child.kill('SIGKILL');
  throw new Error(`redis-server on port ${port} not ready after ${READY_TIMEOUT_MS} ms:\n${proc.output()}`);
};

const terminate = async (proc: Running | null, signal: NodeJS.Signals): Promise<void> => {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill(signal);
  const timedOut = await Promise.race([proc.exited.then(() => false), sleep(STOP_TIMEOUT_MS).then(() => true)]);
  if (timedOut) {
    proc.child.kill('SIGKILL');
    await proc.exited;
  }
};

/**
 * Starts a real `redis-server` on a free 127.0.0.1 port, in a fresh temp directory, without RDB snapshots.
 * Resolves once it answers PING. The process is killed when the test process exits, if not stopped before.
 */
export const startRedis = async (opts: RedisOptions = {}): Promise<RedisProcess> => {
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), 'dtm-redis-'));
  dirs.add(dir);
  let port = 0;
  let current: Running | null = null;
  // The free port may be taken between probing and binding: try a few.
  for (let attempt = 1; !current; attempt++) {
    port = opts.port ?? (await freePort());
    const proc = await launch(port, dir, opts);
    try {
      await waitReady(port, proc);
      current = proc;
    } catch (err) {
      await terminate(proc, 'SIGKILL');
      if (opts.port || attempt >= 3 || !proc.output().includes('Address already in use')) throw err;
    }
  }

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    stop: () => terminate(current, 'SIGTERM'),
    kill: () => terminate(current, 'SIGKILL'),
    async start() {
      if (current && current.child.exitCode === null && current.child.signalCode === null) return;
      const proc = await launch(port, dir, opts);
      current = proc;
      await waitReady(port, proc);
    },
  };
};
