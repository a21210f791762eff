import { execFile, execFileSync, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A network namespace joined to the host by a veth pair: what runs in it sees the host only through that link,
 * so cutting the link is a real partition (packets vanish, connections time out; no reset, no refusal).
 *
 * What the caller must do for a process in the namespace to reach a server on the host: the namespace has its own
 * loopback, so the host's 127.0.0.1 is not reachable from it. Either
 * - `forwardLoopback([ports])`: the host's 127.0.0.1:<port> becomes reachable from the namespace at the same
 *   address, through the link (and cut with it). The simplest: Redis, the Kafka mock's brokers (which advertise
 *   127.0.0.1), the RMs and the TM all keep their loopback addresses, and branch URLs stored in transactions work
 *   from every worker; or
 * - make the server listen on 0.0.0.0 (or on `hostIp`) and give the namespace `hostIp` (reachable from the
 *   namespace while the link is up, and from the host always, cut or not: the address stays local to the host
 *   while its interface is down) or {@link hostAddress} (the host's own address on its main interface: reachable
 *   from the host, and from every namespace whose link is up). Redis refuses such clients in protected mode unless it has a password or
 *   `--protected-mode no`.
 */
export interface NetnsHost {
  /** The namespace's name (`dtmchaos-<pid>-<name>`). */
  readonly name: string;
  /** The host end's address (/30): reachable from the namespace while the link is up, from the host always. */
  readonly hostIp: string;
  /** The namespace end's address. */
  readonly nsIp: string;
  /**
   * Starts `cmd` in the namespace (`ip netns exec`, which execs it: the child's pid is the command's own, fit for
   * kill and pauseFor). `env` replaces the environment as in child_process.spawn; stdio is piped unless said.
   */
  spawn(
    cmd: string,
    args: string[],
    opts: { env?: Record<string, string>; cwd?: string; stdio?: StdioOptions },
  ): ChildProcess;
  /** Makes the host's 127.0.0.1:<port> reachable from the namespace as 127.0.0.1:<port>, through the link. */
  forwardLoopback(ports: readonly number[]): Promise<void>;
  /** Cuts the link (`ip link set <host end> down`): packets both ways are dropped until `restore`. */
  cut(): Promise<void>;
  restore(): Promise<void>;
  /** Kills every process in the namespace and removes it and the veth pair. Idempotent. */
  destroy(): Promise<void>;
}

const PREFIX = 'dtmchaos-';
/** veth names: `dc<pid>x<seq>h` and `…n`, under Linux's 15-character limit for any pid. */
const vethName = (pid: number, seq: number, end: 'h' | 'n'): string => `dc${pid}x${seq}${end}`;
const VETH_PATTERN = /^dc(\d+)x\d+[hn]$/;

const ip = async (...args: string[]): Promise<string> => {
  try {
    return (await run('ip', args)).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
  }
};

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Kills what runs in namespace `ns` and removes it and the host end of its veth (which takes the peer with it). */
const removeSync = (ns: string, hostVeth: string | null): void => {
  const quiet = { stdio: 'ignore' as const };
  try {
    const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split(/\s+/).filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  } catch {
    // No such namespace.
  }
  if (hostVeth) {
    try {
      execFileSync('ip', ['link', 'del', hostVeth], quiet);
    } catch {
      // Gone with its namespace already.
    }
  }
  try {
    execFileSync('ip', ['netns', 'del', ns], quiet);
  } catch {
    // Never made, or removed already.
  }
};

/** Namespaces and veths left by test processes that died without cleaning up (their pid is in the name). */
const removeStale = async (): Promise<void> => {
  const namespaces = (await ip('netns', 'list')).split('\n').map((l) => l.split(' ')[0] ?? '');
  for (const ns of namespaces) {
    const m = /^dtmchaos-(\d+)-/.exec(ns);
    if (m && !alive(Number(m[1]))) removeSync(ns, null);
  }
  const links = (await ip('-o', 'link', 'show')).split('\n').map((l) => l.split(': ')[1]?.split('@')[0] ?? '');
  for (const link of links) {
    const m = VETH_PATTERN.exec(link);
    if (m && !alive(Number(m[1]))) removeSync('', link);
  }
};

/** A free /30 in 10.201.0.0/16 (16384 of them), picked at random and checked against the addresses in use. */
const pickSubnet = async (): Promise<{ hostIp: string; nsIp: string }> => {
  const used = await ip('-4', '-o', 'addr', 'show');
  for (let attempt = 0; attempt < 50; attempt++) {
    const block = Math.floor(Math.random() * 16_384);
    const third = block >> 6;
    const fourth = (block & 63) * 4;
    const hostIp = `10.201.${third}.${fourth + 1}`;
    const nsIp = `10.201.${third}.${fourth + 2}`;
    if (!used.includes(` ${hostIp}/`) && !used.includes(` ${nsIp}/`)) return { hostIp, nsIp };
  }
  throw new Error('no free /30 found in 10.201.0.0/16');
};

/**
 * The host's address on its first non-loopback interface that is not one of ours: reachable from the host and
 * from every namespace whose link is up, whatever the namespace. Servers must listen on 0.0.0.0 to be reached at it.
 */
export const hostAddress = (): string => {
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (VETH_PATTERN.test(name)) continue;
    const v4 = addrs?.find((a) => a.family === 'IPv4' && !a.internal);
    if (v4) return v4.address;
  }
  throw new Error('the host has no non-loopback IPv4 address');
};

/**
 * The namespace's half of `forwardLoopback`: listens on its 127.0.0.1:<port> for each port and relays every
 * connection to <hostIp>:<port>; prints "ready" once listening. While the link is cut the relay must look like the
 * partition it stands behind, not like a refusal: a connection it cannot pass on is kept, silent, and the dial is
 * retried (as TCP retransmits a SYN) until it succeeds or the client gives up. Only an established connection
 * that then fails (a reset, TCP's own timeout) is passed on as a reset.
 */
const RELAY_SCRIPT = `
const net = require('node:net');
const [hostIp, ...ports] = process.argv.slice(1);
let listening = 0;
const relay = (inner, port) => {
  inner.pause();
  const dial = () => {
    if (inner.destroyed) return;
    const outer = net.createConnection({ host: hostIp, port, allowHalfOpen: true });
    let connected = false;
    outer.once('connect', () => {
      connected = true;
      inner.pipe(outer);
      outer.pipe(inner);
      inner.resume();
    });
    outer.on('error', () => {
      if (!connected) return void setTimeout(dial, 500);
      inner.resetAndDestroy();
    });
    inner.on('error', () => outer.resetAndDestroy());
    inner.on('close', () => { if (!connected) outer.destroy(); });
  };
  dial();
};
for (const port of ports.map(Number)) {
  const server = net.createServer({ allowHalfOpen: true }, (inner) => relay(inner, port));
  server.listen(port, '127.0.0.1', () => { if (++listening === ports.length) console.log('ready'); });
}
`;

/** The host's half of `forwardLoopback`: <hostIp>:<port> → 127.0.0.1:<port>, as a plain relay. */
const hostRelay = (hostIp: string, port: number): Promise<{ server: Server; sockets: Set<Socket> }> => {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (outer) => {
    const inner = createConnection({ host: '127.0.0.1', port, allowHalfOpen: true });
    for (const s of [outer, inner]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    outer.pipe(inner);
    inner.pipe(outer);
    const reset = (): void => {
      outer.resetAndDestroy();
      inner.resetAndDestroy();
    };
    outer.on('error', reset);
    inner.on('error', reset);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, hostIp, () => {
      server.off('error', reject);
      resolve({ server, sockets });
    });
  });
};

const live = new Map<string, string>();
let exitHookInstalled = false;
/** No namespace may outlive the test process (see shared/testing's redis-server.ts for why signals too). */
const installExitHook = (): void => {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const cleanUp = (): void => {
    for (const [ns, veth] of live) removeSync(ns, veth);
    live.clear();
  };
  process.on('exit', cleanUp);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanUp();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
};

let seq = 0;

/**
 * Creates network namespace `dtmchaos-<pid>-<name>` with a veth pair to the host (/30 addresses in 10.201.0.0/16,
 * a default route through the host end) and loopback up. Needs root and `ip`. Namespaces left behind by dead test
 * processes are removed first; this one is removed by `destroy`, or when the test process exits.
 */
export const createNetnsHost = async (name: string): Promise<NetnsHost> => {
  if (!/^[a-z0-9-]{1,32}$/.test(name)) throw new Error(`netns name must be 1-32 of [a-z0-9-], got "${name}"`);
  installExitHook();
  await removeStale();
  const ns = `${PREFIX}${process.pid}-${name}`;
  const n = seq++;
  const hostVeth = vethName(process.pid, n, 'h');
  const nsVeth = vethName(process.pid, n, 'n');
  const { hostIp, nsIp } = await pickSubnet();
  live.set(ns, hostVeth);
  try {
    await ip('netns', 'add', ns);
    await ip('link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', nsVeth);
    await ip('link', 'set', nsVeth, 'netns', ns);
    await ip('addr', 'add', `${hostIp}/30`, 'dev', hostVeth);
    await ip('link', 'set', hostVeth, 'up');
    await ip('-n', ns, 'addr', 'add', `${nsIp}/30`, 'dev', nsVeth);
    await ip('-n', ns, 'link', 'set', nsVeth, 'up');
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
    await ip('-n', ns, 'route', 'add', 'default', 'via', hostIp);
    // The host end's MAC, pinned: while the link is cut the namespace does not ARP for it, so a connection attempt
    // times out as across any partition, instead of failing at once with EHOSTUNREACH when ARP gives up.
    const mac = readFileSync(`/sys/class/net/${hostVeth}/address`, 'utf8').trim();
    await ip('-n', ns, 'neigh', 'replace', hostIp, 'lladdr', mac, 'dev', nsVeth, 'nud', 'permanent');
  } catch (err) {
    removeSync(ns, hostVeth);
    live.delete(ns);
    throw err;
  }

  const relays: { server: Server; sockets: Set<Socket> }[] = [];
  let destroyed = false;

  const spawnIn: NetnsHost['spawn'] = (cmd, args, opts) =>
    spawn('ip', ['netns', 'exec', ns, cmd, ...args], {
      env: opts.env,
      cwd: opts.cwd,
      stdio: opts.stdio ?? 'pipe',
    });

  return {
    name: ns,
    hostIp,
    nsIp,
    spawn: spawnIn,
    async forwardLoopback(ports) {
      for (const port of ports) relays.push(await hostRelay(hostIp, port));
      const relay = spawnIn(process.execPath, ['-e', RELAY_SCRIPT, hostIp, ...ports.map(String)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      await new Promise<void>((resolve, reject) => {
        let out = '';
        const collect = (chunk: Buffer): void => {
          out += chunk.toString('utf8');
          if (out.includes('ready')) resolve();
        };
        relay.stdout!.on('data', collect);
        relay.stderr!.on('data', collect);
        relay.once('exit', (code) => reject(new Error(`the loopback relay in ${ns} exited (${code}):\n${out}`)));
      });
    },
    async cut() {
      await ip('link', 'set', hostVeth, 'down');
    },
    async restore() {
      await ip('link', 'set', hostVeth, 'up');
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      removeSync(ns, hostVeth);
      live.delete(ns);
      for (const r of relays) {
        for (const s of r.sockets) s.destroy();
        await new Promise<void>((resolve) => r.server.close(() => resolve()));
      }
    },
  };
};
