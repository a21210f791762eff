import { afterEach, describe, expect, it, vi } from 'vitest';
import { every } from './every';

afterEach(() => vi.useRealTimers());

describe('every', () => {
  it('when a run outlasts the interval, then the next tick is skipped rather than run beside it', async () => {
    vi.useFakeTimers();
    let running = 0;
    let most = 0;
    let runs = 0;
    let finish: () => void = () => undefined;
    const job = every(
      10,
      () => {
        runs++;
        running++;
        most = Math.max(most, running);
        return new Promise<void>((resolve) => (finish = resolve)).then(() => void running--);
      },
      () => undefined,
    );
    await vi.advanceTimersByTimeAsync(55);
    expect(runs).toBe(1);
    finish();
    await vi.advanceTimersByTimeAsync(10);
    expect(runs).toBe(2);
    expect(most).toBe(1);
    finish();
    await job.stop();
  });

  it('when a run throws, then the error is reported and the next tick runs again', async () => {
    vi.useFakeTimers();
    const errors: unknown[] = [];
    let runs = 0;
    const job = every(
      10,
      async () => {
        runs++;
        if (runs === 1) throw new Error('boom');
      },
      (err) => errors.push(err),
    );
    await vi.advanceTimersByTimeAsync(25);
    expect(errors).toEqual([new Error('boom')]);
    expect(runs).toBe(2);
    await job.stop();
  });

  it('when stopped during a run, then stop waits for that run and no other starts', async () => {
    vi.useFakeTimers();
    let runs = 0;
    let done = false;
    const job = every(
      10,
      async () => {
        runs++;
        await new Promise((r) => setTimeout(r, 30));
        done = true;
      },
      () => undefined,
    );
    await vi.advanceTimersByTimeAsync(10);
    const stopped = job.stop();
    await vi.advanceTimersByTimeAsync(100);
    await stopped;
    expect(done).toBe(true);
    expect(runs).toBe(1);
  });

  it('when a run hangs past maxRunMs, then it is reported and the next runs start without it; stop does not wait for it', async () => {
    vi.useFakeTimers();
    const errors: unknown[] = [];
    let runs = 0;
    const job = every(
      10,
      () => {
        runs++;
        // The first run never settles (a command stuck on a dead connection); the others end at once.
        return runs === 1 ? new Promise<void>(() => undefined) : Promise.resolve();
      },
      (err) => errors.push(err),
      { maxRunMs: 100 },
    );
    await vi.advanceTimersByTimeAsync(95);
    expect(runs).toBe(1);
    await vi.advanceTimersByTimeAsync(30);
    expect(runs).toBeGreaterThanOrEqual(2);
    expect(String(errors[0])).toMatch(/still going after 100 ms/);
    const before = runs;
    await vi.advanceTimersByTimeAsync(50);
    expect(runs).toBeGreaterThan(before);
    await job.stop();
  });
});
