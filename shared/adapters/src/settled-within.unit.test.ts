import { describe, expect, it } from 'vitest';
import { closeOrCut, settledWithin } from './settled-within';

describe('settledWithin', () => {
  it('when the promise resolves in time, then true', async () => {
    expect(await settledWithin(Promise.resolve(1), 1000)).toBe(true);
  });
  it('when the promise rejects in time, then true and the rejection is handled', async () => {
    expect(await settledWithin(Promise.reject(new Error('x')), 1000)).toBe(true);
  });
  it('when the promise never settles, then false after the deadline', async () => {
    const start = Date.now();
    expect(await settledWithin(new Promise(() => undefined), 50)).toBe(false);
    expect(Date.now() - start).toBeGreaterThanOrEqual(45);
  });
});

describe('closeOrCut', () => {
  it('when the close settles in time, then it is clean and nothing is cut', async () => {
    let cuts = 0;
    expect(
      await closeOrCut(
        async () => undefined,
        () => void cuts++,
        1000,
      ),
    ).toBe(true);
    expect(cuts).toBe(0);
  });
  it('when the close hangs, then it is cut after the grace and reported as not clean', async () => {
    let cuts = 0;
    expect(
      await closeOrCut(
        () => new Promise(() => undefined),
        () => void cuts++,
        30,
      ),
    ).toBe(false);
    expect(cuts).toBe(1);
  });
});
