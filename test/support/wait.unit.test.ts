import { describe, expect, it } from 'vitest';
import { waitFor } from './wait';

describe('waitFor', () => {
  it('when the check holds after a few polls, then it answers the checked value', async () => {
    let n = 0;
    expect(await waitFor(() => (++n >= 3 ? `after ${n}` : false), 'three polls', { interval: 1 })).toBe('after 3');
  });

  it('when the check throws until it holds, then the throws count as not yet', async () => {
    let n = 0;
    const value = await waitFor(
      () => {
        if (++n < 3) throw new Error('not yet');
        return n;
      },
      'no throw',
      { interval: 1 },
    );
    expect(value).toBe(3);
  });

  it('when the check never holds, then the test fails naming what it waited for and the last error', async () => {
    await expect(
      waitFor(
        () => {
          throw new Error('still 0');
        },
        () => 'the counter',
        { timeout: 30, interval: 5 },
      ),
    ).rejects.toThrow(/the counter: not after 30 ms: still 0/);
  });

  it('when the check answers 0 or an empty string, then those count as values (only false, null and undefined wait)', async () => {
    expect(await waitFor(() => 0, 'zero')).toBe(0);
    expect(await waitFor(() => '', 'empty')).toBe('');
  });
});
