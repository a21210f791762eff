import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_OPTIONS, fold, type TxEvent } from '@dtm-ts/domain';
import { decodeState, encodeState } from './snapshot';

const at = (s: number): string => new Date(Date.UTC(2026, 0, 1) + s * 1000).toISOString();

const prepared = (transType: 'saga' | 'tcc', concurrent: boolean): TxEvent => ({
  type: 'TransactionPrepared',
  data: {
    definition: {
      gid: 'g',
      transType,
      protocol: 'http',
      steps:
        transType === 'saga'
          ? [0, 1, 2].map((i) => ({ action: `http://rm/a${i}`, compensate: `http://rm/c${i}` }))
          : [],
      payloads: transType === 'saga' ? ['', '{"x":1}', ''] : [],
      customData: '',
      queryPrepared: '',
      options: { ...DEFAULT_OPTIONS, retryLimit: 5 },
      ordering: { concurrent, orders: concurrent ? { 2: [0, 1] } : {} },
      delayS: 0,
    },
    branches:
      transType === 'saga'
        ? ['01', '02', '03'].flatMap((b, i) => [
            { branchId: b, op: 'compensate' as const, url: `http://rm/c${i}`, data: '' },
            { branchId: b, op: 'action' as const, url: `http://rm/a${i}`, data: '' },
          ])
        : [],
    at: at(0),
  },
});

const branchId = fc.constantFrom('01', '02', '03');
const saga_op = fc.constantFrom('action' as const, 'compensate' as const);
const time = fc.nat(10_000);

/** Any event a saga's stream may hold, in any order: misplaced ones are part of the test (evolve ignores them). */
const anyEvent: fc.Arbitrary<TxEvent> = fc.oneof(
  time.map((t): TxEvent => ({ type: 'TransactionSubmitted', data: { at: at(t) } })),
  fc
    .tuple(branchId, saga_op, time)
    .map(([b, op, t]): TxEvent => ({ type: 'BranchSucceeded', data: { branchId: b, op, at: at(t) } })),
  fc
    .tuple(branchId, time)
    .map(([b, t]): TxEvent => ({ type: 'BranchFailed', data: { branchId: b, op: 'action', reason: 'no', at: at(t) } })),
  fc
    .tuple(branchId, saga_op, fc.constantFrom('ongoing' as const, 'error' as const), time, fc.nat(600))
    .map(([b, op, outcome, t, d]): TxEvent => ({
      type: 'BranchRetryScheduled',
      data: { branchId: b, op, outcome, detail: `HTTP ${d}`, at: at(t), retryAt: at(t + d) },
    })),
  time.map((t): TxEvent => ({ type: 'TransactionAborting', data: { reason: 'r', at: at(t) } })),
  time.map((t): TxEvent => ({ type: 'TransactionSucceeded', data: { at: at(t) } })),
  fc
    .tuple(time, fc.boolean())
    .map(([t, forced]): TxEvent => ({ type: 'TransactionFailed', data: { reason: 'f', forced, at: at(t) } })),
  time.map((t): TxEvent => ({ type: 'RetryScheduleReset', data: { at: at(t) } })),
);

describe('snapshots', () => {
  it('folding from a snapshot taken anywhere equals folding the whole stream (random event sequences)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('saga' as const, 'tcc' as const),
        fc.boolean(),
        fc.array(anyEvent, { maxLength: 60 }),
        fc.nat(),
        (transType, concurrent, rest, cut) => {
          const events = [prepared(transType, concurrent), ...rest];
          const k = cut % (events.length + 1);
          // Through JSON, as Redis stores it.
          const snapshot = decodeState(JSON.parse(JSON.stringify(encodeState(fold(events.slice(0, k))))) as string);
          expect(fold(events.slice(k), snapshot)).toEqual(fold(events));
        },
      ),
      { numRuns: 300, seed: 11 },
    );
  });
});
