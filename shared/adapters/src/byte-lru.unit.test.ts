import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteLru, approxBytes } from './byte-lru';

describe('ByteLru', () => {
  it('when entries exceed the byte budget, then the least recently used leave first', () => {
    const lru = new ByteLru<string, string>(100, (_, v) => v.length);
    lru.set('a', 'x'.repeat(40));
    lru.set('b', 'x'.repeat(40));
    expect(lru.get('a')).toBeDefined(); // a is now the most recent
    lru.set('c', 'x'.repeat(40)); // 120 > 100: b goes
    expect([lru.get('a') !== undefined, lru.get('b') !== undefined, lru.get('c') !== undefined]).toEqual([
      true,
      false,
      true,
    ]);
    expect(lru.bytes).toBe(80);
  });

  it('when one entry is larger than the whole budget, then it is not kept and evicts nothing', () => {
    const lru = new ByteLru<string, string>(100, (_, v) => v.length);
    lru.set('a', 'x'.repeat(50));
    lru.set('huge', 'x'.repeat(101));
    expect(lru.get('huge')).toBeUndefined();
    expect(lru.get('a')).toBeDefined();
  });

  it('whatever the operations, the bytes held never exceed the budget and match what it holds', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant('set' as const), key: fc.nat(20), size: fc.nat(60) }),
            fc.record({ op: fc.constant('delete' as const), key: fc.nat(20) }),
            fc.record({ op: fc.constant('get' as const), key: fc.nat(20) }),
          ),
        ),
        (ops) => {
          const lru = new ByteLru<number, number>(200, (_, v) => v);
          const model = new Map<number, number>();
          for (const o of ops) {
            if (o.op === 'set') {
              lru.set(o.key, o.size);
              model.set(o.key, o.size);
            } else if (o.op === 'delete') {
              lru.delete(o.key);
              model.delete(o.key);
            } else lru.get(o.key);
            expect(lru.bytes).toBeLessThanOrEqual(200);
          }
          // What it still holds is what was last set for those keys, and the byte count adds up.
          let sum = 0;
          for (const k of model.keys()) {
            const v = lru.get(k);
            if (v !== undefined) {
              expect(v).toBe(model.get(k));
              sum += v;
            }
          }
          expect(lru.bytes).toBe(sum);
        },
      ),
    );
  });

  it('approxBytes grows with the strings a value holds, through objects, arrays and sets', () => {
    const small = approxBytes({ a: ['x'], s: new Set([1]) });
    const big = approxBytes({ a: ['x'.repeat(10_000)], s: new Set([1]) });
    expect(big - small).toBeGreaterThanOrEqual(2 * 9_999);
  });
});
