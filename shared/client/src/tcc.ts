import { DtmBadRequest } from './errors';
import { callTm, requestBranch, type BranchResponse } from './http';
import { runGlobalTransaction } from './global-trans';
import { BranchIdGen, checkOptions, encodePayload, httpTimeout, wireOptions, type TransOptions } from './options';
import { queryValue, type QueryLike } from './query-params';

/** Options of a TCC transaction (`retryLimit` does not apply). */
export type TccOptions = TransOptions;

/**
 * A TCC global transaction (reference §4.2), handed to the function given to {@link tccGlobalTransaction}. Each
 * {@link Tcc.callBranch} registers a branch's confirm and cancel with the TM, then calls its try.
 */
export class Tcc {
  private readonly ids: BranchIdGen;

  /**
   * Usually made by {@link tccGlobalTransaction} or {@link Tcc.fromQuery}.
   * @param parentBranchId for nested TCC: the branch id this transaction's branches are numbered under
   */
  constructor(
    readonly dtm: string,
    readonly gid: string,
    private readonly options: TccOptions = {},
    parentBranchId = '',
  ) {
    checkOptions(options);
    this.ids = new BranchIdGen(parentBranchId);
  }

  /**
   * Nested TCC: the transaction an RM's try handler runs in, read from the try request's query (`dtm`, `gid`,
   * `branch_id`). Branches it calls become sub-branches (`01` → `0101`, `0102`, …) of the same global transaction.
   */
  static fromQuery(query: QueryLike, options: TccOptions = {}): Tcc {
    const dtm = queryValue(query, 'dtm');
    const gid = queryValue(query, 'gid');
    if (dtm === '' || gid === '') throw new DtmBadRequest(`bad tcc info: dtm '${dtm}', gid '${gid}'`);
    return new Tcc(dtm, gid, options, queryValue(query, 'branch_id'));
  }

  /** Body of prepare/submit/abort. */
  header(): Record<string, unknown> {
    return { gid: this.gid, trans_type: 'tcc', protocol: '', ...wireOptions(this.options) };
  }

  /**
   * Registers a branch (its `confirmUrl` and `cancelUrl`, with `body` as their payload), then POSTs `body` to
   * `tryUrl?dtm=…&gid=…&branch_id=…&trans_type=tcc&op=try`. Resolves with the try's answer when it is a 200.
   *
   * @throws {@link DtmFailure} the try answered 409 (or FAILURE), or the TM refused the registration
   * @throws {@link DtmOngoing} the try answered 425
   * @throws {@link DtmTransportError} any other answer, or none
   */
  async callBranch(body: unknown, tryUrl: string, confirmUrl: string, cancelUrl: string): Promise<BranchResponse> {
    const branchId = this.ids.next();
    const data = encodePayload(body);
    const timeoutMs = httpTimeout(this.options);
    await callTm(
      this.dtm,
      'registerBranch',
      { gid: this.gid, trans_type: 'tcc', branch_id: branchId, data, confirm: confirmUrl, cancel: cancelUrl },
      timeoutMs,
    );
    return requestBranch({
      method: 'POST',
      url: tryUrl,
      dtm: this.dtm,
      gid: this.gid,
      transType: 'tcc',
      branchId,
      op: 'try',
      body: data,
      headers: this.options.branchHeaders,
      timeoutMs,
    });
  }
}

/**
 * Runs a TCC global transaction: prepares it, runs `fn` (which calls {@link Tcc.callBranch} for each branch), then
 * submits, so the TM confirms every branch; if `fn` rejects, aborts it, so the TM cancels every registered branch
 * (those whose try failed or never ran too: the barrier makes those cancels no-ops), and rethrows.
 *
 * ```ts
 * await tccGlobalTransaction(dtm, gid, { timeoutToFail: 10 }, async (tcc) => {
 *   await tcc.callBranch({ amount: 30 }, `${a}/TransOutTry`, `${a}/TransOutConfirm`, `${a}/TransOutCancel`);
 *   await tcc.callBranch({ amount: 30 }, `${b}/TransInTry`, `${b}/TransInConfirm`, `${b}/TransInCancel`);
 * });
 * ```
 *
 * @returns what `fn` resolved to
 * @throws what `fn` threw (after the abort), or a TM error from prepare or submit
 */
export function tccGlobalTransaction<T>(dtm: string, gid: string, fn: (tcc: Tcc) => Promise<T>): Promise<T>;
export function tccGlobalTransaction<T>(
  dtm: string,
  gid: string,
  options: TccOptions,
  fn: (tcc: Tcc) => Promise<T>,
): Promise<T>;
export function tccGlobalTransaction<T>(
  dtm: string,
  gid: string,
  a: TccOptions | ((tcc: Tcc) => Promise<T>),
  b?: (tcc: Tcc) => Promise<T>,
): Promise<T> {
  const [options, fn] = typeof a === 'function' ? [{}, a] : [a, b!];
  const tcc = new Tcc(dtm, gid, options);
  return runGlobalTransaction({ dtm, timeoutMs: httpTimeout(options), header: () => tcc.header() }, () => fn(tcc));
}
