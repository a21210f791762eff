import { describe, expect, it } from 'vitest';
import { branchRowsOf, orderCycle } from './branch-rows';
import { saga } from './fixtures.unit-support';

describe('branchRowsOf', () => {
  it('when a saga has steps, then each gives a compensate row and then an action row, numbered from 01', () => {
    const { definition } = saga(2);
    expect(branchRowsOf(definition)).toEqual([
      { branchId: '01', op: 'compensate', url: 'http://rm/c0', data: '{"i":0}' },
      { branchId: '01', op: 'action', url: 'http://rm/a0', data: '{"i":0}' },
      { branchId: '02', op: 'compensate', url: 'http://rm/c1', data: '{"i":1}' },
      { branchId: '02', op: 'action', url: 'http://rm/a1', data: '{"i":1}' },
    ]);
  });

  it('when a msg has steps, then each gives one action row, and a missing payload is empty', () => {
    const { definition } = saga(2);
    const msg = { ...definition, transType: 'msg' as const, payloads: ['p0'] };
    expect(branchRowsOf(msg)).toEqual([
      { branchId: '01', op: 'action', url: 'http://rm/a0', data: 'p0' },
      { branchId: '02', op: 'action', url: 'http://rm/a1', data: '' },
    ]);
  });

  it('when the mode registers its branches later (tcc, xa, workflow), then there are no rows', () => {
    const { definition } = saga(1);
    for (const transType of ['tcc', 'xa', 'workflow'] as const) {
      expect(branchRowsOf({ ...definition, transType })).toEqual([]);
    }
  });
});

describe('orderCycle', () => {
  it('when orders form a chain or a diamond, then there is no cycle', () => {
    expect(orderCycle({ 1: [0], 2: [0], 3: [1, 2] }, 4)).toBeNull();
    expect(orderCycle({}, 3)).toBeNull();
  });

  it('when orders loop, then a step on the loop is named', () => {
    expect(orderCycle({ 0: [1], 1: [0] }, 2)).not.toBeNull();
    expect(orderCycle({ 0: [1], 1: [2], 2: [1] }, 3)).toBe(1);
  });

  it('when the chain is very long, then the search does not overflow the stack', () => {
    const n = 50_000;
    const orders: Record<number, number[]> = {};
    for (let i = 1; i < n; i++) orders[i] = [i - 1];
    expect(orderCycle(orders, n)).toBeNull();
    orders[0] = [n - 1];
    expect(orderCycle(orders, n)).not.toBeNull();
  });
});
