import type { BranchDef, CallOp, Policy, TransDefinition } from './types';

/** What a branch call came back with, by the reference's rules (§3.2). */
export type BranchOutcome =
  | { readonly kind: 'success' }
  | { readonly kind: 'failure'; readonly detail: string }
  | { readonly kind: 'ongoing'; readonly detail: string }
  | { readonly kind: 'error'; readonly detail: string };

/** Commands are imperative; time and server policy arrive on them so `decide` stays pure. */
export type TxCommand =
  | {
      type: 'PrepareGlobalTransaction';
      data: { definition: TransDefinition; branches: BranchDef[] };
      metadata: { now: number; trace?: string };
    }
  | {
      type: 'AbortGlobalTransaction';
      data: { gid: string; transType: string; reason: string };
      metadata: { now: number };
    }
  | {
      type: 'RegisterBranch';
      data: { gid: string; transType: string; branches: BranchDef[] };
      metadata: { now: number };
    }
  | {
      type: 'SubmitGlobalTransaction';
      data: { definition: TransDefinition; branches: BranchDef[] };
      metadata: { now: number; trace?: string };
    }
  | {
      type: 'RecordBranchResult';
      data: { branchId: string; op: CallOp; url: string; outcome: BranchOutcome };
      metadata: { now: number; policy: Policy };
    }
  | { type: 'RecordPassFailure'; data: { gid: string; error: string }; metadata: { now: number; policy: Policy } }
  | { type: 'ForceStop'; data: { gid: string }; metadata: { now: number } }
  | { type: 'ResetNextCronTime'; data: { gid: string }; metadata: { now: number } };
