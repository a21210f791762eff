import { getTm } from './http';
import { DEFAULT_HTTP_TIMEOUT_MS } from './http';
import { DtmTransportError } from './errors';

/** Statuses of a global transaction (reference §2.2). `succeed` and `failed` are final. */
export type GlobalStatus = 'prepared' | 'submitted' | 'aborting' | 'succeed' | 'failed';

/** A global transaction as `/query` shows it (snake_case, as on the wire); fields beyond these vary by TM. */
export interface TransactionRecord {
  readonly gid: string;
  readonly trans_type: string;
  readonly status: GlobalStatus;
  readonly rollback_reason?: string;
  readonly create_time?: string;
  readonly finish_time?: string;
  readonly rollback_time?: string;
  readonly [key: string]: unknown;
}

/** One branch row of `/query` (reference §2.3). */
export interface BranchRecord {
  readonly gid: string;
  readonly branch_id: string;
  readonly op: string;
  readonly status: 'prepared' | 'succeed' | 'failed';
  readonly url?: string;
  readonly [key: string]: unknown;
}

/** What `/query` answers: the transaction (null when the gid is unknown) and its branches in creation order. */
export interface QueryResult {
  readonly transaction: TransactionRecord | null;
  readonly branches: readonly BranchRecord[];
}

/**
 * Asks the TM for a new unique gid (`GET <dtm>/newGid`). `dtm` is the TM's API base, e.g.
 * `http://localhost:36789/api/dtmsvr`. Any unique string of your own works as a gid too.
 */
export const newGid = async (dtm: string, opts: { httpTimeoutMs?: number } = {}): Promise<string> => {
  const body = await getTm(dtm, 'newGid', opts.httpTimeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS);
  if (typeof body.gid !== 'string' || body.gid === '') {
    throw new DtmTransportError(`TM newGid answered no gid: ${JSON.stringify(body)}`);
  }
  return body.gid;
};

/** Reads a global transaction and its branches (`GET <dtm>/query?gid=`); `transaction` is null for an unknown gid. */
export const query = async (dtm: string, gid: string, opts: { httpTimeoutMs?: number } = {}): Promise<QueryResult> => {
  const body = await getTm(dtm, `query?gid=${encodeURIComponent(gid)}`, opts.httpTimeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS);
  return {
    transaction: (body.transaction ?? null) as TransactionRecord | null,
    branches: Array.isArray(body.branches) ? (body.branches as BranchRecord[]) : [],
  };
};
