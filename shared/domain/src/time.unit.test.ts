import { describe, expect, it } from 'vitest';
import { epochMs, iso } from './time';

describe('event times', () => {
  it('when a time is stamped, then it reads as toISOString does, within a second, across seconds and at the edges', () => {
    const base = Date.UTC(2026, 11, 2, 9, 59, 59, 990);
    const times = [0, 1, 999, 1000, -1, -1001, -0.5, 1.7, base, ...Array.from({ length: 40 }, (_, i) => base + i)];
    for (let i = 0; i < 2000; i++) times.push(Math.floor(((i * 7919) % 4000) * 1e9) - 1e12);
    for (const t of times) expect(iso(t)).toBe(new Date(t).toISOString());
    expect(iso(253402300800000)).toBe('+010000-01-01T00:00:00.000Z');
    expect(() => iso(Number.NaN)).toThrow(RangeError);
  });

  it('when a stamp is read back, then it is the same millisecond, also when read twice in a row', () => {
    const t = Date.UTC(2026, 0, 1, 0, 0, 0, 7);
    expect(epochMs(iso(t))).toBe(t);
    expect(epochMs(iso(t))).toBe(t);
    expect(epochMs(iso(t + 1))).toBe(t + 1);
  });
});
