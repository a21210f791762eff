import {
  DEFAULT_OPTIONS,
  fold,
  initialState,
  type ActiveTransaction,
  type GlobalTransaction,
  type TxEvent,
} from '@dtm-ts/domain';
import { fnv1a32 } from './keys';

/** Every key path of a value (`a.b`, `a[].c`), sorted: the shape of a folded state, not its data. */
const shapeOf = (value: unknown, path = '', out = new Set<string>()): Set<string> => {
  if (Array.isArray(value)) for (const v of value) shapeOf(v, `${path}[]`, out);
  else if (value instanceof Set) out.add(`${path}<set>`);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.add(`${path}.${k}`);
      shapeOf(v, `${path}.${k}`, out);
    }
  }
  return out;
};

/** A saga folded through the events that fill every part of the state: the sample its fingerprint is taken of. */
const sample = (): GlobalTransaction => {
  const at = '2026-01-01T00:00:00.000Z';
  const events: TxEvent[] = [
    {
      type: 'TransactionPrepared',
      data: {
        definition: {
          gid: 'g',
          transType: 'saga',
          protocol: 'http',
          steps: [{ action: 'a', compensate: 'c' }],
          payloads: [''],
          customData: '',
          queryPrepared: '',
          options: DEFAULT_OPTIONS,
          ordering: { concurrent: false, orders: {} },
          delayS: 0,
        },
        branches: [
          { branchId: '01', op: 'compensate', url: 'c', data: '' },
          { branchId: '01', op: 'action', url: 'a', data: '' },
        ],
        at,
      },
    },
    { type: 'TransactionSubmitted', data: { at } },
    {
      type: 'BranchRetryScheduled',
      data: { branchId: '01', op: 'action', outcome: 'error', detail: 'x', at, retryAt: at },
    },
    { type: 'TransactionAborting', data: { reason: 'x', at } },
  ];
  return fold(events);
};

/**
 * Format of stored snapshots: a fingerprint of the folded state's shape. A build whose state has other
 * fields computes another format and ignores older snapshots (it folds the whole stream and writes new
 * ones), so a snapshot is never read into a state it does not fit.
 */
export const SNAPSHOT_FORMAT = `s1-${fnv1a32([...shapeOf(sample())].sort().join('|')).toString(16)}`;

/** A folded state as snapshot JSON (its one Set as an array). */
export const encodeState = (state: GlobalTransaction): string =>
  JSON.stringify(state.status === 'none' ? state : { ...state, toCompensate: [...state.toCompensate] });

/** The state a snapshot holds. */
export const decodeState = (json: string): GlobalTransaction => {
  const raw = JSON.parse(json) as { status: string; toCompensate?: number[] };
  if (raw.status === 'none') return initialState;
  return { ...(raw as unknown as ActiveTransaction), toCompensate: new Set(raw.toCompensate ?? []) };
};
