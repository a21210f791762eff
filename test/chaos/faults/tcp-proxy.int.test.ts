import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pause, waitFor } from '../../support/wait';
import { startFaultProxy, type FaultProxy } from './tcp-proxy';

/** An echo server that remembers what it received and how its connections ended. */
interface Echo {
  readonly port: number;
  received: string;
  readonly ends: ('closed' | 'error')[];
  close(): Promise<void>;
}

const startEcho = async (): Promise<Echo> => {
  const sockets = new Set<Socket>();
  const echo: Echo & { server?: Server } = {
    port: 0,
    received: '',
    ends: [],
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = createServer((s) => {
    sockets.add(s);
    s.on('data', (chunk: Buffer) => {
      echo.received += chunk.toString('utf8');
      s.write(chunk);
    });
    s.on('error', () => echo.ends.push('error'));
    s.on('close', (hadError) => {
      sockets.delete(s);
      if (!hadError) echo.ends.push('closed');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(echo, { port: (server.address() as AddressInfo).port });
};

/** A client connection that collects what it reads and how it ended. */
const dial = (proxy: FaultProxy): { socket: Socket; read: () => string; error: () => NodeJS.ErrnoException | null } => {
  const socket = connect(proxy.port, proxy.host);
  let read = '';
  let error: NodeJS.ErrnoException | null = null;
  socket.on('data', (chunk: Buffer) => (read += chunk.toString('utf8')));
  socket.on('error', (err: NodeJS.ErrnoException) => (error = err));
  return { socket, read: () => read, error: () => error };
};

const connected = (socket: Socket): Promise<void> =>
  new Promise((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });

describe('fault TCP proxy', () => {
  let echo: Echo;
  let proxy: FaultProxy;
  const open: Socket[] = [];

  beforeAll(async () => {
    echo = await startEcho();
    proxy = await startFaultProxy({ host: '127.0.0.1', port: echo.port });
  });
  afterEach(() => {
    proxy.set({});
    for (const s of open.splice(0)) s.destroy();
    echo.received = '';
  });
  afterAll(async () => {
    await proxy.close();
    await echo.close();
  });

  it('passes bytes both ways unchanged by default', async () => {
    const c = dial(proxy);
    open.push(c.socket);
    c.socket.write('hello');
    await waitFor(() => c.read() === 'hello', 'the echo through the proxy');
    expect(echo.received).toBe('hello');
  });

  it('delays every chunk by at least the latency, both ways, and keeps their order under jitter', async () => {
    proxy.set({ latencyMs: 40, jitterMs: 60 });
    const c = dial(proxy);
    open.push(c.socket);
    await connected(c.socket);
    const started = Date.now();
    c.socket.write('ping');
    await waitFor(() => c.read() === 'ping', 'the delayed echo');
    // Out and back: at least twice the latency (an upper bound would only measure the machine's load).
    expect(Date.now() - started).toBeGreaterThanOrEqual(80);

    // Many small writes, each with its own random delay: the stream must still arrive in order, intact.
    let sent = 'ping';
    for (let i = 0; i < 200; i++) {
      const part = `<${i}>`;
      sent += part;
      c.socket.write(part);
      if (i % 20 === 0) await pause(5);
    }
    await waitFor(() => c.read().length >= sent.length, 'all echoed chunks', { timeout: 30_000 });
    expect(c.read()).toBe(sent);
  });

  it('resets new connections with the given probability, and none with probability 0', async () => {
    proxy.set({ reset: 1 });
    const refused = dial(proxy);
    open.push(refused.socket);
    refused.socket.write('lost');
    await waitFor(() => refused.error(), 'the reset of a new connection');
    expect(refused.error()!.code).toBe('ECONNRESET');
    expect(echo.received).toBe('');

    proxy.set({ reset: 0 });
    const kept = dial(proxy);
    open.push(kept.socket);
    kept.socket.write('kept');
    await waitFor(() => kept.read() === 'kept', 'the echo once resets are off');
  });

  it('resetAll resets live connections on both sides', async () => {
    const c = dial(proxy);
    open.push(c.socket);
    c.socket.write('x');
    await waitFor(() => c.read() === 'x', 'the echo before the reset');
    const endsBefore = echo.ends.length;
    proxy.resetAll();
    await waitFor(() => c.error(), 'the client seeing the reset');
    expect(c.error()!.code).toBe('ECONNRESET');
    // The target sees the reset too (an error), not a clean close.
    await waitFor(() => echo.ends.length > endsBefore, 'the target seeing its connection end');
    expect(echo.ends.slice(endsBefore)).toContain('error');
  });

  it('a black hole holds bytes both ways, on live and new connections, and delivers them once lifted', async () => {
    const live = dial(proxy);
    open.push(live.socket);
    live.socket.write('a');
    await waitFor(() => live.read() === 'a', 'the echo before the black hole');

    proxy.set({ blackhole: true });
    live.socket.write('b');
    const fresh = dial(proxy);
    open.push(fresh.socket);
    await connected(fresh.socket);
    fresh.socket.write('c');
    // Nothing may come through while it lasts; waiting a while is the only way to see "nothing".
    await pause(500);
    expect(echo.received).toBe('a');
    expect(live.read()).toBe('a');
    expect(fresh.read()).toBe('');
    expect(live.error()).toBeNull();
    expect(fresh.error()).toBeNull();

    proxy.set({});
    await waitFor(() => live.read() === 'ab' && fresh.read() === 'c', 'the held bytes once the hole is lifted');
  });

  it('passes a clean close through after the bytes before it', async () => {
    proxy.set({ latencyMs: 50 });
    const c = dial(proxy);
    let ended = false;
    c.socket.on('end', () => (ended = true));
    c.socket.end('last words');
    await waitFor(() => ended, 'the FIN back from the target');
    expect(echo.received).toBe('last words');
    expect(c.read()).toBe('last words');
    expect(c.error()).toBeNull();
  });

  it('resets clients whose target refuses the connection', async () => {
    const dead = await startEcho();
    const port = dead.port;
    await dead.close();
    const p = await startFaultProxy({ host: '127.0.0.1', port });
    try {
      const c = dial(p);
      open.push(c.socket);
      await waitFor(() => c.error(), 'the reset for a refused target');
      expect(c.error()!.code).toBe('ECONNRESET');
    } finally {
      await p.close();
    }
  });
});
