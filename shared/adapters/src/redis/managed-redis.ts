import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, unlink } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Options of {@link startManagedRedis}. */
export interface ManagedRedisOptions {
  /** The application's data directory; Redis lives in `<dataDir>/redis`. */
  readonly dataDir: string;
  /** Receives one line per notable step (start, reuse, unexpected exit). */
  readonly log?: (msg: string) => void;
}

/** A Redis reachable over a unix socket, started by us or found already running. */
export interface ManagedRedis {
  /** Unix socket of the server (it listens on no TCP port): connect with `new Redis({ path })`. */
  readonly path: string;
  /** True when this call started the server; a reused server is left running by `stop`. */
  readonly spawned: boolean;
  /** Shuts the server down (flushing its AOF) and waits for it to exit. Idempotent. */
  stop(): Promise<void>;
}

export const REDIS_NOT_INSTALLED =
  'redis-server is not installed. On Debian/Ubuntu: sudo apt-get install -y redis-server (or set REDIS_URL to an existing Redis)';

const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 15_000;
/** How much of the server's output is kept to explain a failed start. */
const OUTPUT_TAIL_CHARS = 16 * 1024;
/** sun_path is 108 bytes on Linux and 104 on macOS, terminator included. */
const MAX_SOCKET_PATH_BYTES = 103;

/**
 * Runs a private, persistent Redis for `npm start` when no REDIS_URL is given: AOF on (fsync each
 * second), no RDB snapshots, no TCP port, a unix socket only its owner can open. A server already
 * answering on that socket (e.g. left by a killed process) is reused rather than replaced, since
 * two servers must never share one AOF directory.
 */
export const startManagedRedis = async (opts: ManagedRedisOptions): Promise<ManagedRedis> => {
  const log = opts.log ?? (() => {});
  const dir = resolve(opts.dataDir, 'redis');
  const path = join(dir, 'redis.sock');
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new Error(
      `unix socket path ${path} is too long for the OS (max ${MAX_SOCKET_PATH_BYTES} bytes): use a shorter data directory`,
    );
  }
  await mkdir(dir, { recursive: true });

  if (existsSync(path)) {
    if (await answers(path)) {
      await waitForPing(path, READY_TIMEOUT_MS, () => null);
      log(`reusing redis-server already listening on ${path}`);
      return { path, spawned: false, stop: async () => {} };
    }
    // Left by a server that died without cleaning up; redis-server would replace it anyway.
    log(`removing stale socket ${path}`);
    await unlink(path).catch(() => {});
  }

  // No TCP at all (port 0); AOF fsynced each second; `save ''` turns RDB snapshots off.
  const config: Record<string, string> = {
    port: '0',
    unixsocket: path,
    unixsocketperm: '700',
    appendonly: 'yes',
    appendfsync: 'everysec',
    save: '',
    dir,
    daemonize: 'no',
  };
  const args = Object.entries(config).flatMap(([name, value]) => [`--${name}`, value]);
  // Its own process group: Ctrl-C (SIGINT to the terminal's group) must not stop it under the TM processes still
  // draining; the owner stops it last, with SHUTDOWN.
  const child = spawn('redis-server', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  await new Promise<void>((ok, fail) => {
    child.once('spawn', ok);
    child.once('error', (err: NodeJS.ErrnoException) =>
      fail(err.code === 'ENOENT' ? new Error(REDIS_NOT_INSTALLED) : err),
    );
  });

  // The pipes must be read for the server's whole life, or it blocks once they fill up.
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exited = new Promise<void>((ok) =>
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      ok();
    }),
  );
  let stopping: Promise<void> | null = null;
  let ready = false;
  void exited.then(() => {
    // Before readiness the failed start reports the exit itself; after stop() it is expected.
    if (ready && !stopping)
      log(`redis-server (pid ${child.pid}) exited unexpectedly (${describeExit(exit)}):\n${output}`);
  });

  try {
    await waitForPing(
      path,
      READY_TIMEOUT_MS,
      () => exit && `redis-server exited (${describeExit(exit)}) before answering PING`,
    );
  } catch (err) {
    if (!exit) {
      child.kill('SIGKILL');
      await exited;
    }
    throw new Error(`${(err as Error).message}; its output:\n${output}`, { cause: err });
  }
  ready = true;
  log(`started redis-server (pid ${child.pid}) on ${path}, data in ${dir}`);

  return {
    path,
    spawned: true,
    stop: () => (stopping ??= shutdown(child, path, exited, () => exit !== null)),
  };
};

const shutdown = async (
  child: ChildProcess,
  path: string,
  exited: Promise<void>,
  hasExited: () => boolean,
): Promise<void> => {
  if (hasExited()) return;
  // SHUTDOWN fsyncs the AOF before exiting; on success the server just closes the connection.
  const reply = await command(path, ['SHUTDOWN'], 5_000).catch(() => '-unreachable');
  if (reply !== null && !hasExited()) child.kill('SIGTERM');
  const stopped = await Promise.race([exited.then(() => true), sleep(STOP_TIMEOUT_MS, false, { ref: false })]);
  if (!stopped) {
    child.kill('SIGKILL');
    await exited;
  }
};

const describeExit = (exit: { code: number | null; signal: NodeJS.Signals | null } | null): string =>
  exit?.signal ? `signal ${exit.signal}` : `code ${exit?.code ?? '?'}`;

/** True when something accepts connections on the socket and speaks RESP (even `-LOADING`). */
const answers = async (path: string): Promise<boolean> => {
  try {
    return (await command(path, ['PING'], 2_000)) !== null;
  } catch {
    return false;
  }
};

/** Polls PING until `+PONG`; `failed` returns a reason to stop early (e.g. the server exited). */
const waitForPing = async (path: string, timeoutMs: number, failed: () => string | null): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    const reason = failed();
    if (reason) throw new Error(reason);
    try {
      const reply = await command(path, ['PING'], 1_000);
      if (reply === '+PONG') return;
      last = reply ?? 'connection closed';
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() >= deadline)
      throw new Error(`redis-server did not answer PING on ${path} within ${timeoutMs / 1000} s (${last})`);
    await sleep(50);
  }
};

/**
 * Sends one command over the socket and resolves to the first line of the reply, or null when the
 * server closed the connection without replying (what a successful SHUTDOWN does). A raw RESP
 * exchange avoids ioredis' reconnect logic, which would turn "nobody there" into retries.
 */
const command = (path: string, args: readonly string[], timeoutMs: number): Promise<string | null> =>
  new Promise((ok, fail) => {
    const sock = createConnection({ path });
    let buf = '';
    let settled = false;
    const finish = (err: Error | null, reply: string | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) fail(err);
      else ok(reply);
    };
    const timer = setTimeout(() => finish(new Error(`no answer on ${path} within ${timeoutMs} ms`), null), timeoutMs);
    sock.setEncoding('utf8');
    sock.once('connect', () => {
      sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    });
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const end = buf.indexOf('\r\n');
      if (end >= 0) finish(null, buf.slice(0, end));
    });
    sock.once('error', (err) => finish(err, null));
    sock.once('close', () => finish(null, null));
  });
