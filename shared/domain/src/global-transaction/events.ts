import type { BranchDef, TransDefinition } from './types';

type Op = BranchDef['op'];

/**
 * What happened to a global transaction, past tense; the stream of one gid is its whole history.
 * Times in events are ISO-8601 strings: the log is read by people during audits.
 */
export type TxEvent =
  | {
      readonly type: 'TransactionPrepared';
      /** `trace`: the W3C traceparent of the request that created it, so later passes join its trace. */
      readonly data: {
        readonly definition: TransDefinition;
        readonly branches: readonly BranchDef[];
        readonly at: string;
        readonly trace?: string;
      };
    }
  | { readonly type: 'TransactionSubmitted'; readonly data: { readonly at: string } }
  | {
      readonly type: 'BranchesRegistered';
      readonly data: { readonly branches: readonly BranchDef[]; readonly at: string };
    }
  | {
      readonly type: 'CheckBackRetryScheduled';
      readonly data: {
        readonly outcome: 'ongoing' | 'error';
        readonly detail: string;
        readonly at: string;
        readonly retryAt: string;
      };
    }
  | {
      readonly type: 'BranchSucceeded';
      readonly data: { readonly branchId: string; readonly op: Op; readonly at: string };
    }
  | {
      readonly type: 'BranchFailed';
      readonly data: { readonly branchId: string; readonly op: Op; readonly reason: string; readonly at: string };
    }
  | {
      readonly type: 'BranchRetryScheduled';
      readonly data: {
        readonly branchId: string;
        readonly op: Op;
        readonly outcome: 'ongoing' | 'error';
        readonly detail: string;
        readonly at: string;
        readonly retryAt: string;
      };
    }
  | { readonly type: 'TransactionAborting'; readonly data: { readonly reason: string; readonly at: string } }
  /** `result`: a workflow's result (base64), as its client submitted it. */
  | { readonly type: 'TransactionSucceeded'; readonly data: { readonly at: string; readonly result?: string } }
  | {
      readonly type: 'TransactionFailed';
      readonly data: {
        readonly reason: string;
        readonly forced: boolean;
        readonly at: string;
        readonly result?: string;
      };
    }
  | { readonly type: 'RetryScheduleReset'; readonly data: { readonly at: string } }
  /** A pass threw (a bug, a value the transport cannot send): the error, and when the next pass may run. */
  | {
      readonly type: 'PassFailed';
      readonly data: { readonly error: string; readonly at: string; readonly retryAt: string };
    };
