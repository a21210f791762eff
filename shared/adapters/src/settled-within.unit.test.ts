import { describe, expect, it } from 'vitest';
import { settledWithin } from './settled-within';

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
