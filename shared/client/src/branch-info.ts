/** The branch a TM call is about: the query parameters it always sends, plus those an AP adds. */
export interface BranchInfo {
  readonly gid: string;
  readonly transType: string;
  readonly branchId: string;
  /** `action`, `compensate`, `try`, `confirm`, `cancel`, `commit`, `rollback`, or `msg` for a check-back. */
  readonly op: string;
  /** The TM's API base; only on calls an AP makes (TCC try, XA action), '' otherwise. */
  readonly dtm: string;
  /** XA action only: the url for commit/rollback. */
  readonly phase2Url: string;
}
