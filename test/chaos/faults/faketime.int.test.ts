import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../support/wait';
import { skewedClock, type SkewedClock } from './faketime';

interface Reading {
  /** The child's Date.now(), ms. */
  readonly wallMs: number;
  /** The child's Date.now() minus ours when we read its line, in seconds. */
  readonly skewS: number;
  /** The child's performance.now(), ms. */
  readonly monoMs: number;
}

/** A node child printing its Date.now() and performance.now() every 50 ms; we note our Date.now() on each line. */
const clockChild = (env: Record<string, string>): { child: ChildProcess; readings: Reading[] } => {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => console.log(Date.now(), performance.now()), 50)'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const readings: Reading[] = [];
  let partial = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const [wall, mono] = line.split(' ').map(Number);
      readings.push({ wallMs: wall!, skewS: (wall! - Date.now()) / 1_000, monoMs: mono! });
    }
  });
  return { child, readings };
};

describe('skewed clock (libfaketime)', () => {
  let clock: SkewedClock | undefined;
  let child: ChildProcess | undefined;
  afterEach(async () => {
    child?.kill('SIGKILL');
    await clock?.cleanup();
  });

  it("moves a child's Date.now() by the offset, jumps it mid-run, and leaves its timers running", async () => {
    clock = await skewedClock(30);
    expect(clock.env['LD_PRELOAD']).toMatch(/libfaketime\.so/);
    const c = clockChild(clock.env);
    child = c.child;
    await waitFor(() => c.readings.length >= 3, 'readings from the skewed child');
    // A line reaches us a little after the child wrote it: the skew we see is the offset minus that delay.
    for (const r of c.readings) expect(r.skewS).toBeGreaterThan(25);
    for (const r of c.readings) expect(r.skewS).toBeLessThan(31);

    // A step back by a minute, as NTP might do to a clock that ran ahead.
    await clock.set(-30);
    const setResolvedAt = Date.now();
    const afterSet = c.readings.length;
    // Timers run on CLOCK_MONOTONIC, which is not faked: the child's interval keeps firing across the step.
    await waitFor(() => c.readings.length >= afterSet + 5, 'the interval still firing after the jump back', {
      timeout: 10_000,
    });
    // The readings switch once, for good; and once set resolved the child reads the new offset: no line with the
    // old one was written after that (its real write time is its clock minus the old offset; on a busy machine such
    // a line may still reach us later).
    const skews = c.readings.map((r) => r.skewS);
    const switched = skews.findIndex((s) => s < 0);
    expect(switched).toBeGreaterThan(0);
    for (const r of c.readings.slice(0, switched)) expect(r.wallMs - 30_000).toBeLessThanOrEqual(setResolvedAt);
    for (const s of skews.slice(0, switched)) expect(s).toBeGreaterThan(25);
    for (const s of skews.slice(switched)) {
      expect(s).toBeGreaterThan(-35);
      expect(s).toBeLessThan(-29);
    }
    // performance.now() never went back.
    const mono = c.readings.map((r) => r.monoMs);
    expect(mono).toEqual([...mono].sort((a, b) => a - b));
    expect(clock.offsetS).toBe(-30);
  });

  it('refuses an offset that is not a number of seconds', async () => {
    clock = await skewedClock(0);
    await expect(clock.set(Number.NaN)).rejects.toThrow(/finite/);
  });
});
