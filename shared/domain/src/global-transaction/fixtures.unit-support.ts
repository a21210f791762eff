import { branchRowsOf } from './branch-rows';
import type { TxEvent } from './events';
import {
  sagaBranchId,
  type BranchDef,
  type Policy,
  type TransDefinition,
  type TransOptions,
  DEFAULT_OPTIONS,
} from './types';

export const T0 = Date.parse('2026-01-01T00:00:00.000Z');
export const at = (ms: number): string => new Date(T0 + ms).toISOString();
export const policy: Policy = { retryIntervalS: 10, timeoutToFailS: 35, backoffCapS: 60 };

export const saga = (
  n: number,
  opts: Partial<TransOptions> = {},
  ordering: TransDefinition['ordering'] = { concurrent: false, orders: {} },
): { definition: TransDefinition; branches: BranchDef[] } => {
  const steps = Array.from({ length: n }, (_, i) => ({ action: `http://rm/a${i}`, compensate: `http://rm/c${i}` }));
  const definition: TransDefinition = {
    gid: 'g1',
    transType: 'saga',
    protocol: 'http',
    steps,
    payloads: steps.map((_, i) => `{"i":${i}}`),
    customData: '',
    queryPrepared: '',
    options: { ...DEFAULT_OPTIONS, ...opts },
    ordering,
    delayS: 0,
  };
  return { definition, branches: branchRowsOf(definition) };
};

export const submitted = (s: ReturnType<typeof saga>, t = 0): TxEvent[] => [
  { type: 'TransactionPrepared', data: { ...s, at: at(t) } },
  { type: 'TransactionSubmitted', data: { at: at(t) } },
];
export const ok = (step: number, op: 'action' | 'compensate', t: number): TxEvent => ({
  type: 'BranchSucceeded',
  data: { branchId: sagaBranchId(step), op, at: at(t) },
});
export const refused = (step: number, t: number, reason = 'no'): TxEvent => ({
  type: 'BranchFailed',
  data: { branchId: sagaBranchId(step), op: 'action', reason, at: at(t) },
});
export const retry = (
  step: number,
  op: 'action' | 'compensate',
  outcome: 'ongoing' | 'error',
  t: number,
  retryAt: number,
): TxEvent => ({
  type: 'BranchRetryScheduled',
  data: { branchId: sagaBranchId(step), op, outcome, detail: outcome, at: at(t), retryAt: at(retryAt) },
});
export const aborting = (t: number, reason: string): TxEvent => ({
  type: 'TransactionAborting',
  data: { reason, at: at(t) },
});
