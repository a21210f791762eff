/** Identifier of a global transaction, chosen by the AP (or by `newGid`). */
export type Gid = string;

/** Transaction modes. Only `saga` is driven so far; the others are reserved names of the protocol. */
export type TransType = 'saga';
export const TRANS_TYPES: readonly string[] = ['saga', 'tcc', 'xa', 'msg', 'workflow'];

/** DTM's global statuses (`client/dtmcli/consts.go`). `succeed` and `failed` are final. */
export type GlobalStatus = 'prepared' | 'submitted' | 'aborting' | 'succeed' | 'failed';
export const FINAL_STATUSES: ReadonlySet<string> = new Set(['succeed', 'failed']);

export type BranchOp = 'action' | 'compensate';
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
  readonly protocol: 'http';
  readonly steps: readonly Readonly<Record<string, string>>[];
  readonly payloads: readonly string[];
  readonly customData: string;
  readonly queryPrepared: string;
  readonly options: TransOptions;
  readonly ordering: SagaOrdering;
}

/** One branch operation row (DTM's `trans_branch_op`), unique by (branchId, op). */
export interface BranchDef {
  readonly branchId: string;
  readonly op: BranchOp;
  readonly url: string;
  readonly data: string;
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
export const branchKey = (branchId: string, op: BranchOp): string => `${branchId}/${op}`;

/** Saga branch id of step i (0-based): `01`, `02`, … as DTM numbers them. */
export const sagaBranchId = (i: number): string => String(i + 1).padStart(2, '0');
