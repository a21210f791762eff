import type { BranchDef, TransDefinition } from './types';

/** Times in events are ISO-8601 strings: the log is read by people during audits. */
export type TxEvent =
  | {
      type: 'TransactionPrepared';
      /** `trace`: the W3C traceparent of the request that created it, so later passes join its trace. */
      data: { definition: TransDefinition; branches: BranchDef[]; at: string; trace?: string };
    }
  | { type: 'TransactionSubmitted'; data: { at: string } }
  | { type: 'BranchesRegistered'; data: { branches: BranchDef[]; at: string } }
  | {
      type: 'CheckBackRetryScheduled';
      data: { outcome: 'ongoing' | 'error'; detail: string; at: string; retryAt: string };
    }
  | { type: 'BranchSucceeded'; data: { branchId: string; op: BranchDef['op']; at: string } }
  | { type: 'BranchFailed'; data: { branchId: string; op: BranchDef['op']; reason: string; at: string } }
  | {
      type: 'BranchRetryScheduled';
      data: {
        branchId: string;
        op: BranchDef['op'];
        outcome: 'ongoing' | 'error';
        detail: string;
        at: string;
        retryAt: string;
      };
    }
  | { type: 'TransactionAborting'; data: { reason: string; at: string } }
  /** `result`: a workflow's result (base64), as its client submitted it. */
  | { type: 'TransactionSucceeded'; data: { at: string; result?: string } }
  | { type: 'TransactionFailed'; data: { reason: string; forced: boolean; at: string; result?: string } }
  | { type: 'RetryScheduleReset'; data: { at: string } }
  /** A pass threw (a bug, a value the transport cannot send): the error, and when the next pass may run. */
  | { type: 'PassFailed'; data: { error: string; at: string; retryAt: string } };

export type TxEventType = TxEvent['type'];

export const TX_EVENT_TYPES: ReadonlySet<string> = new Set<TxEventType>([
  'TransactionPrepared',
  'TransactionSubmitted',
  'BranchesRegistered',
  'CheckBackRetryScheduled',
  'BranchSucceeded',
  'BranchFailed',
  'BranchRetryScheduled',
  'TransactionAborting',
  'TransactionSucceeded',
  'TransactionFailed',
  'RetryScheduleReset',
]);
