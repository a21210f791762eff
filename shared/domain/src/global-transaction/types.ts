/** Identifier of a global transaction, chosen by the AP (or by `newGid`). */
export type Gid = string;

/** Transaction modes. `workflow` is run by the client; the TM records its progress and resumes it. */
export type TransType = 'saga' | 'tcc' | 'xa' | 'msg' | 'workflow';
export const TRANS_TYPES: readonly string[] = ['saga', 'tcc', 'xa', 'msg', 'workflow'];

/** How the TM calls a transaction's branches (DTM's `protocol`; empty on the wire means http). */
export type Protocol = 'http' | 'grpc' | 'json-rpc';
export const PROTOCOLS: readonly Protocol[] = ['http', 'grpc', 'json-rpc'];

/** DTM's global statuses (`client/dtmcli/consts.go`). `succeed` and `failed` are final. */
export type GlobalStatus = 'prepared' | 'submitted' | 'aborting' | 'succeed' | 'failed';
export const FINAL_STATUSES: ReadonlySet<string> = new Set(['succeed', 'failed']);

/** Stored branch operations: saga/msg `action` + `compensate`, tcc `confirm` + `cancel`, xa `commit` + `rollback`. */
export type BranchOp = 'action' | 'compensate' | 'confirm' | 'cancel' | 'commit' | 'rollback';
/** A workflow row's op: whatever the client names it. */
export type WorkflowOp = string & {};
/** The msg check-back is called like a branch: branch id `00`, op `msg`; the workflow resume callback: op = workflow name. */
export type CallOp = BranchOp | 'msg' | WorkflowOp;
export const CHECK_BACK_BRANCH_ID = '00';
export type BranchStatus = 'prepared' | 'succeed' | 'failed';

/** Per-transaction knobs, in seconds as on the wire; 0 means "use the server default". */
export interface TransOptions {
  readonly timeoutToFail: number;
  readonly requestTimeout: number;
  readonly retryInterval: number;
  readonly retryLimit: number;
  readonly branchHeaders: Readonly<Record<string, string>>;
  readonly waitResult: boolean;
}

/** Saga ordering: sequential, or concurrent where step i waits for every step in `orders[i]` (0-based). */
export interface SagaOrdering {
  readonly concurrent: boolean;
  readonly orders: Readonly<Record<number, readonly number[]>>;
}

/** What the AP asked for, as validated by the API. Stored once, in `TransactionPrepared`. */
export interface TransDefinition {
  readonly gid: Gid;
  readonly transType: TransType;
  readonly protocol: Protocol;
  readonly steps: readonly Readonly<Record<string, string>>[];
  readonly payloads: readonly string[];
  readonly customData: string;
  readonly queryPrepared: string;
  readonly options: TransOptions;
  /** Saga: `custom_data.concurrent` + `orders`. Msg: the top-level `concurrent` flag, no orders. */
  readonly ordering: SagaOrdering;
  /** Msg: `custom_data.delay`, seconds after creation before delivery starts. */
  readonly delayS: number;
  /** Workflow: `custom_data.name`, and `custom_data.data` base64-decoded (the body of the resume callback). */
  readonly workflow?: { readonly name: string; readonly input: string };
  /** Workflow submit: `req_extra` (`status`, `rollback_reason`, `result`). Only read by the submit's decision. */
  readonly reqExtra?: Readonly<Record<string, string>>;
}

/** One branch operation row (DTM's `trans_branch_op`), unique by (branchId, op). */
export interface BranchDef {
  readonly branchId: string;
  /** One of the modes' ops; a workflow row carries the client's own op string. */
  readonly op: BranchOp | WorkflowOp;
  readonly url: string;
  readonly data: string;
  /** Workflow rows are registered with their outcome already known; other rows start `prepared`. */
  readonly status?: BranchStatus;
}

/** Server-wide defaults and limits that shape decisions; passed in so the core stays pure. */
export interface Policy {
  /** conf RetryInterval, seconds. */
  readonly retryIntervalS: number;
  /** conf TimeoutToFail, seconds (not used by saga, which only times out when asked to). */
  readonly timeoutToFailS: number;
  /** Upper bound on the exponential backoff after errors, seconds. DTM has none. */
  readonly backoffCapS: number;
}

/** Branch key inside one transaction. */
export const branchKey = (branchId: string, op: CallOp): string => `${branchId}/${op}`;

/** DTM's two-digit numbering: `01`, `02`, … for i = 0, 1, … */
const twoDigits = (i: number): string => String(i + 1).padStart(2, '0');

/** Saga branch id of step i (0-based): `01`, `02`, … as DTM numbers them. */
export const sagaBranchId = (i: number): string => twoDigits(i);

/** Branch id of subscriber k (0-based) of a msg step `topic://name` with branch id `stepId`: `01-01`, `01-02`, … */
export const subscriberBranchId = (stepId: string, k: number): string => `${stepId}-${twoDigits(k)}`;

/** Options as a request that sets none of them: every value is the server default. */
export const DEFAULT_OPTIONS: TransOptions = Object.freeze({
  timeoutToFail: 0,
  requestTimeout: 0,
  retryInterval: 0,
  retryLimit: 0,
  branchHeaders: {},
  waitResult: false,
});
