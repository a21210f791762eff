import { execFileSync, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisProcess } from '@dtm-ts/testing';
import { waitFor } from '../../support/wait';
import { createNetnsHost, hostAddress, type NetnsHost } from './netns';
import { startFaultProxy, type FaultProxy } from './tcp-proxy';

/**
 * One Redis PING from a fresh connection made in the namespace: prints PONG, "timeout" when nothing answers in
 * `ms` (a partition: no reset, no refusal), or the error code.
 */
const PROBE = `
const [host, port, ms] = process.argv.slice(1);
const s = require('node:net').connect(Number(port), host);
s.setTimeout(Number(ms), () => { console.log('timeout'); process.exit(0); });
s.on('connect', () => s.write('PING\\r\\n'));
s.on('data', (d) => { console.log(String(d).trim()); process.exit(0); });
s.on('error', (e) => { console.log(e.code); process.exit(0); });
`;

/** A client in the namespace holding one connection: each line on its stdin sends a PING; it prints the replies. */
const HOLDER = `
const [host, port] = process.argv.slice(1);
const s = require('node:net').connect(Number(port), host);
s.on('connect', () => console.log('connected'));
s.on('data', (d) => console.log(String(d).trim()));
s.on('error', (e) => console.log(e.code));
process.stdin.on('data', () => s.write('PING\\r\\n'));
`;

/** The same PING from the test process, on the host. */
const hostProbe = (host: string, port: number): Promise<string> =>
  new Promise((resolve) => {
    const s = connect(port, host);
    s.setTimeout(5_000, () => {
      s.destroy();
      resolve('timeout');
    });
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d: Buffer) => {
      s.destroy();
      resolve(d.toString('utf8').trim());
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });

const output = (child: ChildProcess): (() => string) => {
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  return () => out;
};

describe('network namespace worker host', () => {
  let redis: RedisProcess;
  let ns: NetnsHost;
  let proxy: FaultProxy;

  const probe = async (host: string, port: number, ms = 1_500): Promise<string> => {
    const child = ns.spawn(process.execPath, ['-e', PROBE, host, String(port), String(ms)], {});
    const out = output(child);
    await new Promise((resolve) => child.once('exit', resolve));
    return out().trim();
  };

  beforeAll(async () => {
    redis = await startRedis();
    ns = await createNetnsHost('probe');
    // Redis listens on the host's 127.0.0.1 only: a plain proxy puts it on the host end of the link.
    proxy = await startFaultProxy({ host: '127.0.0.1', port: redis.port }, { listenHost: ns.hostIp });
    await ns.forwardLoopback([redis.port]);
  });
  afterAll(async () => {
    await ns?.destroy();
    await proxy?.close();
    await redis?.stop();
  });

  it('is a namespace of its own with a veth pair and addresses in one /30', () => {
    expect(ns.name).toBe(`dtmchaos-${process.pid}-probe`);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).toContain(ns.name);
    const [h, n] = [ns.hostIp, ns.nsIp].map((a) => a.split('.').map(Number));
    expect(h!.slice(0, 3)).toEqual(n!.slice(0, 3));
    expect(n![3]! - h![3]!).toBe(1);
    expect(h![3]! % 4).toBe(1);
  });

  it("reaches Redis on the host end's address and through its forwarded loopback, and the host's main address", async () => {
    expect(await probe(ns.hostIp, proxy.port)).toBe('+PONG');
    expect(await probe('127.0.0.1', redis.port)).toBe('+PONG');
    // hostAddress(): servers on 0.0.0.0 are reachable there from the namespace too (the proxy listens on hostIp
    // only, so the host's main address refuses: reached, and refused, rather than timed out).
    expect(await probe(hostAddress(), proxy.port)).toBe('ECONNREFUSED');
  });

  it('after cut, new connections time out and a held one gets no answer; after restore both work again', async () => {
    const holder = ns.spawn(process.execPath, ['-e', HOLDER, '127.0.0.1', String(redis.port)], {});
    const held = output(holder);
    try {
      await waitFor(() => held().includes('connected'), 'the held connection');
      holder.stdin!.write('\n');
      await waitFor(() => held().includes('PONG'), 'a PONG on the held connection before the cut');

      await ns.cut();
      // A partition: no refusal, no reset; nothing answers.
      expect(await probe(ns.hostIp, proxy.port)).toBe('timeout');
      expect(await probe('127.0.0.1', redis.port)).toBe('timeout');
      const before = held();
      holder.stdin!.write('\n');
      expect(await probe(ns.hostIp, proxy.port, 1_000)).toBe('timeout'); // a second's wait, no answer meanwhile
      expect(held()).toBe(before);
      // Only the namespace is cut off: the host's own processes still reach servers on the host end's address.
      expect(await hostProbe(ns.hostIp, proxy.port)).toBe('+PONG');

      await ns.restore();
      await waitFor(async () => (await probe(ns.hostIp, proxy.port)) === '+PONG', 'Redis again after restore', {
        timeout: 30_000,
      });
      expect(await probe('127.0.0.1', redis.port)).toBe('+PONG');
      // The PING sent during the cut was retransmitted by TCP and answered once the link came back.
      await waitFor(() => held().split('PONG').length - 1 >= 2, 'the PING sent during the cut answered', {
        timeout: 30_000,
      });
      expect(held()).not.toMatch(/ECONNRESET|EPIPE/);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('destroy removes the namespace and both veth ends, and kills what runs in it', async () => {
    const other = await createNetnsHost('doomed');
    const sleeper = other.spawn('sleep', ['600'], { stdio: 'ignore' });
    const exited = new Promise((resolve) => sleeper.once('exit', (_code, signal) => resolve(signal)));
    // `ip netns exec` enters the namespace a moment after the spawn: destroy what runs there, not what is about to.
    await waitFor(
      () =>
        execFileSync('ip', ['netns', 'pids', other.name], { encoding: 'utf8' })
          .split(/\s+/)
          .includes(String(sleeper.pid)),
      'the sleeper inside the namespace',
    );
    await other.destroy();
    expect(await exited).toBe('SIGKILL');
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(other.name);
    const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
    expect(links).not.toMatch(new RegExp(`dc${process.pid}x\\d+[hn].*\\b${other.name}\\b`));
    expect(links).not.toContain(`${other.hostIp}`);
    const addrs = execFileSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' });
    expect(addrs).not.toContain(` ${other.hostIp}/`);
    await other.destroy();
  });

  it('removes namespaces and veths left behind by a test process that died', async () => {
    // A dead pid: a process that ran and exited.
    const dead = Number(execFileSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).trim());
    const stale = `dtmchaos-${dead}-stale`;
    const staleVeth = `dc${dead}x0h`;
    execFileSync('ip', ['netns', 'add', stale]);
    execFileSync('ip', ['link', 'add', staleVeth, 'type', 'veth', 'peer', 'name', `dc${dead}x0n`]);
    const fresh = await createNetnsHost('after-stale');
    try {
      expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(stale);
      expect(execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })).not.toContain(staleVeth);
      expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).toContain(ns.name);
    } finally {
      await fresh.destroy();
    }
  });
});
