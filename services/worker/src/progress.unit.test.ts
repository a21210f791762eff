import { describe, expect, it } from 'vitest';
import { progressLine } from './progress';

const sink = (isTTY: boolean) => {
  const out: string[] = [];
  return { out, isTTY, write: (s: string) => out.push(s) };
};

describe('progress line', () => {
  it('when the sink is a terminal, then it redraws the count and rate at most every interval, and ends the line', () => {
    const s = sink(true);
    let t = 0;
    const p = progressLine(s, 'rebuild', 'appends', () => t, 250);
    t = 500;
    p.add(100); // drawn: 100 in 0.5 s
    t = 600;
    p.add(100); // too soon: not drawn
    t = 1000;
    p.add(100);
    p.done();
    expect(s.out).toEqual([
      '\rrebuild: 100 appends (200/s)',
      '\rrebuild: 300 appends (300/s)',
      '\rrebuild: 300 appends (300/s)\n',
    ]);
  });

  it('when the sink is not a terminal (piped, CI), then it writes nothing', () => {
    const s = sink(false);
    const p = progressLine(s, 'replay', 'transactions');
    p.add(5);
    p.done();
    expect(s.out).toEqual([]);
  });
});
