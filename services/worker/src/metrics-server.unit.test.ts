import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { METRICS_PORT_TRIES, startMetricsServer, type MetricsServer } from './metrics-server';

const open: (Server | MetricsServer)[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) {
    if ('port' in s) await s.close();
    else await new Promise((r) => s.close(r));
  }
});

/** Takes `count` consecutive free ports on 127.0.0.1 and holds them; returns the first. */
const holdPorts = async (count: number): Promise<number> => {
  for (;;) {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const first = (probe.address() as AddressInfo).port;
    const held = [probe];
    let ok = first + count - 1 <= 65535;
    for (let p = first + 1; ok && p < first + count; p++) {
      const s = createServer();
      ok = await new Promise<boolean>((r) => {
        s.once('error', () => r(false));
        s.listen(p, '127.0.0.1', () => r(true));
      });
      if (ok) held.push(s);
    }
    if (ok) {
      open.push(...held);
      return first;
    }
    for (const s of held) await new Promise((r) => s.close(r));
  }
};

const serve = (port: number, warnings: string[]) =>
  startMetricsServer({ port, host: '127.0.0.1', warn: (_f, msg) => warnings.push(msg) }, (_req, res) =>
    res.end('dtm_metric 1\n'),
  );

describe('a worker metrics listener', () => {
  it('when METRICS_PORT is taken by another worker, then it serves on the next free port and says so', async () => {
    const taken = await holdPorts(1);
    const warnings: string[] = [];
    const server = await serve(taken, warnings);
    expect(server).not.toBeNull();
    open.push(server!);
    expect(server!.port).toBeGreaterThan(taken);
    expect(server!.port).toBeLessThanOrEqual(taken + METRICS_PORT_TRIES);
    expect(await (await fetch(`http://127.0.0.1:${server!.port}/metrics`)).text()).toBe('dtm_metric 1\n');
    expect(warnings).toEqual(['METRICS_PORT is taken; serving metrics on the next free port']);
  });

  it('when METRICS_PORT and the ports after it are all taken, then it serves none, warns, and does not throw', async () => {
    const taken = await holdPorts(METRICS_PORT_TRIES + 1);
    const warnings: string[] = [];
    await expect(serve(taken, warnings)).resolves.toBeNull();
    expect(warnings).toEqual(['METRICS_PORT and the ports after it are taken; this worker serves no metrics']);
  });

  it('when METRICS_PORT is free, then it serves there without a warning', async () => {
    const port = await holdPorts(1);
    await new Promise((r) => (open.pop() as Server).close(r));
    const warnings: string[] = [];
    const server = await serve(port, warnings);
    open.push(server!);
    expect(server!.port).toBe(port);
    expect(warnings).toEqual([]);
  });
});
