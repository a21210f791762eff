import type { SqlBarrierStore } from './barrier';
import { DtmBadRequest, DtmFailure } from './errors';
import { runGlobalTransaction } from './global-trans';
import { callTm, DEFAULT_HTTP_TIMEOUT_MS, requestBranch, type BranchResponse } from './http';
import { BranchIdGen, checkOptions, encodePayload, httpTimeout, wireOptions, type TransOptions } from './options';
import { queryValue, type QueryLike } from './query-params';

/** Options of an XA transaction (`retryLimit` does not apply). */
export type XaOptions = TransOptions;

/**
 * An XA global transaction on the AP side (reference §4.3), handed to the function given to
 * {@link xaGlobalTransaction}. Each {@link Xa.callBranch} asks an RM to run its part in a local XA transaction and
 * leave it prepared; the TM then commits (or rolls back) every one.
 */
export class Xa {
  private readonly ids = new BranchIdGen();

  constructor(
    readonly dtm: string,
    readonly gid: string,
    private readonly options: XaOptions = {},
  ) {
    checkOptions(options);
  }

  /** Body of prepare/submit/abort. */
  header(): Record<string, unknown> {
    return { gid: this.gid, trans_type: 'xa', protocol: '', ...wireOptions(this.options) };
  }

  /**
   * POSTs `body` to `url?dtm=…&gid=…&branch_id=…&trans_type=xa&op=action&phase2_url=<url>`. The RM (with
   * {@link xaLocalTransaction}) runs its business in an XA transaction, registers the branch, and prepares it;
   * the TM later calls the same url with `op=commit` or `op=rollback`.
   *
   * @throws {@link DtmFailure} the RM answered 409 (or FAILURE)
   * @throws {@link DtmOngoing} the RM answered 425
   * @throws {@link DtmTransportError} any other answer, or none
   */
  callBranch(body: unknown, url: string): Promise<BranchResponse> {
    return requestBranch({
      method: 'POST',
      url,
      dtm: this.dtm,
      gid: this.gid,
      transType: 'xa',
      branchId: this.ids.next(),
      op: 'action',
      body: encodePayload(body),
      headers: this.options.branchHeaders,
      timeoutMs: httpTimeout(this.options),
    });
  }
}

/**
 * Runs an XA global transaction: prepares it, runs `fn` (which calls {@link Xa.callBranch} for each RM), then
 * submits, so the TM commits every prepared branch; if `fn` rejects, aborts, so the TM rolls them back, and
 * rethrows.
 *
 * ```ts
 * await xaGlobalTransaction(dtm, gid, async (xa) => {
 *   await xa.callBranch({ account: 1, amount: -30 }, `${bankA}/xa`);
 *   await xa.callBranch({ account: 2, amount: 30 }, `${bankB}/xa`);
 * });
 * ```
 */
export function xaGlobalTransaction<T>(dtm: string, gid: string, fn: (xa: Xa) => Promise<T>): Promise<T>;
export function xaGlobalTransaction<T>(
  dtm: string,
  gid: string,
  options: XaOptions,
  fn: (xa: Xa) => Promise<T>,
): Promise<T>;
export function xaGlobalTransaction<T>(
  dtm: string,
  gid: string,
  a: XaOptions | ((xa: Xa) => Promise<T>),
  b?: (xa: Xa) => Promise<T>,
): Promise<T> {
  const [options, fn] = typeof a === 'function' ? [{}, a] : [a, b!];
  const xa = new Xa(dtm, gid, options);
  return runGlobalTransaction({ dtm, timeoutMs: httpTimeout(options), header: () => xa.header() }, () => fn(xa));
}

/**
 * A database that can run XA branches: {@link PgXaResource} (PostgreSQL) and {@link MysqlXaResource} (MySQL,
 * MariaDB).
 *
 * @typeParam Conn the connection the local XA transaction runs on
 */
export interface XaResource<Conn> {
  /** The barrier table on the same database. */
  readonly barrier: SqlBarrierStore<Conn>;
  /**
   * Starts local XA transaction `xid` on a dedicated connection and runs `fn` in it; when `fn` resolves, ends and
   * prepares it, when it rejects, rolls it back.
   */
  runPrepared<T>(xid: string, fn: (conn: Conn) => Promise<T>): Promise<T>;
  /** Commits or rolls back prepared transaction `xid`; resolves when there is none (already done, or never prepared). */
  finish(xid: string, op: 'commit' | 'rollback'): Promise<void>;
}

/** The XA branch a request is about, as {@link xaLocalTransaction} hands it to the business function. */
export interface XaBranch {
  readonly gid: string;
  readonly branchId: string;
  readonly op: string;
  /** The TM's API base, from the `dtm` query parameter. */
  readonly dtm: string;
  /** The url the TM calls for commit/rollback (`phase2_url`). */
  readonly phase2Url: string;
}

/**
 * The RM side of an XA branch (DTM's `XaLocalTransaction`): one handler for all three ops of one url.
 *
 * - `op=action`: starts XA transaction `<gid>-<branch_id>`, inserts barrier row (gid, branch, `action`, `01`),
 *   runs `busi` on that connection, registers the branch with the TM (`url` = `phase2_url`), then ends and
 *   prepares the XA transaction. Any error rolls it back. If the barrier row exists already, the TM rolled this
 *   branch back before its action arrived (or the action is a repeat): refused with {@link DtmFailure}.
 * - `op=commit` / `op=rollback`: commits or rolls back the prepared transaction (an unknown xid counts as done);
 *   a rollback then writes the barrier row with reason `rollback`, so a late action is refused.
 *
 * ```ts
 * app.post('/xa', express.json(), rmHandler((req) =>
 *   xaLocalTransaction(req.query, xaPg, async (client) => {
 *     await client.query('UPDATE account SET balance = balance + $1 WHERE id = $2', [req.body.amount, req.body.id]);
 *   })));
 * ```
 *
 * @returns busi's value for an action; undefined for commit and rollback
 * @throws {@link DtmBadRequest} the query lacks gid, branch_id or op, or an action lacks dtm or phase2_url
 */
export const xaLocalTransaction = async <Conn, T>(
  query: QueryLike,
  resource: XaResource<Conn>,
  busi: (conn: Conn, xa: XaBranch) => Promise<T>,
): Promise<T | undefined> => {
  const xa: XaBranch = {
    gid: queryValue(query, 'gid'),
    branchId: queryValue(query, 'branch_id'),
    op: queryValue(query, 'op'),
    dtm: queryValue(query, 'dtm'),
    phase2Url: queryValue(query, 'phase2_url'),
  };
  if (xa.gid === '' || xa.branchId === '' || xa.op === '') {
    throw new DtmBadRequest(`bad xa info: gid '${xa.gid}', branch_id '${xa.branchId}', op '${xa.op}'`);
  }
  const xid = `${xa.gid}-${xa.branchId}`;
  const barrierRow = { transType: 'xa', gid: xa.gid, branchId: xa.branchId, op: 'action', barrierId: '01' };

  if (xa.op === 'commit' || xa.op === 'rollback') {
    await resource.finish(xid, xa.op);
    // Rolled back: leave the mark that refuses an action still on its way (it inserts the same key).
    if (xa.op === 'rollback') await resource.barrier.insertIgnore(null, { ...barrierRow, reason: 'rollback' });
    return undefined;
  }
  if (xa.op !== 'action') throw new DtmBadRequest(`bad xa op '${xa.op}'`);
  if (xa.dtm === '' || xa.phase2Url === '') {
    throw new DtmBadRequest(`xa action without dtm or phase2_url (dtm '${xa.dtm}', phase2_url '${xa.phase2Url}')`);
  }
  return resource.runPrepared(xid, async (conn) => {
    if (!(await resource.barrier.insertIgnore(conn, { ...barrierRow, reason: 'action' }))) {
      const reason = await resource.barrier.reasonOf(conn, barrierRow);
      throw new DtmFailure(
        reason === 'rollback'
          ? `xa branch ${xid} was rolled back before its action arrived`
          : `xa branch ${xid} already ran its action`,
      );
    }
    const result = await busi(conn, xa);
    await callTm(
      xa.dtm,
      'registerBranch',
      { gid: xa.gid, trans_type: 'xa', branch_id: xa.branchId, url: xa.phase2Url },
      DEFAULT_HTTP_TIMEOUT_MS,
    );
    return result;
  });
};
