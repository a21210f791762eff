import type { BranchDef, CallOp, Gid, Policy, TransDefinition } from './types';

/** What a branch call came back with, by the reference's rules (§3.2). */
export type BranchOutcome =
  | { readonly kind: 'success' }
  | { readonly kind: 'failure'; readonly detail: string }
  | { readonly kind: 'ongoing'; readonly detail: string }
  | { readonly kind: 'error'; readonly detail: string };

/** A definition and its branch rows, as the edge built them from a request. */
export interface DefinitionWithBranches {
  readonly definition: TransDefinition;
  readonly branches: readonly BranchDef[];
}

interface At {
  /** Epoch milliseconds: time arrives on the command so `decide` stays pure. */
  readonly now: number;
}

interface Traced extends At {
  /** W3C traceparent of the request, stored with a new transaction. */
  readonly trace?: string;
}

/**
 * Commands are imperative; time and server policy arrive on them so `decide` stays pure.
 *
 * `transType` on abort and register is the mode the caller names, not yet checked: `decide` compares
 * it with the stored transaction's, and answers an unknown or other mode as DTM does (abort: 409).
 */
export type TxCommand =
  | { readonly type: 'PrepareGlobalTransaction'; readonly data: DefinitionWithBranches; readonly metadata: Traced }
  | {
      readonly type: 'AbortGlobalTransaction';
      readonly data: { readonly gid: Gid; readonly transType: string; readonly reason: string };
      readonly metadata: At;
    }
  | {
      readonly type: 'RegisterBranch';
      readonly data: {
        readonly gid: Gid;
        readonly transType: string;
        readonly branches: readonly BranchDef[];
        /** Most distinct branch ids the transaction may hold once these are added (MAX_BRANCHES); unset: no bound. */
        readonly maxBranches?: number;
      };
      readonly metadata: At;
    }
  | { readonly type: 'SubmitGlobalTransaction'; readonly data: DefinitionWithBranches; readonly metadata: Traced }
  | {
      readonly type: 'RecordBranchResult';
      readonly data: {
        readonly gid: Gid;
        readonly branchId: string;
        readonly op: CallOp;
        readonly url: string;
        readonly outcome: BranchOutcome;
      };
      readonly metadata: At & { readonly policy: Policy };
    }
  | {
      readonly type: 'RecordPassFailure';
      readonly data: { readonly gid: Gid; readonly error: string };
      readonly metadata: At & { readonly policy: Policy };
    }
  | { readonly type: 'ForceStop'; readonly data: { readonly gid: Gid }; readonly metadata: At }
  | { readonly type: 'ResetNextCronTime'; readonly data: { readonly gid: Gid }; readonly metadata: At };
