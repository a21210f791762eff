import { BranchBarrier, MSG_BARRIER, type BarrierOutcome, type SqlBarrierStore } from './barrier';
import { DtmDuplicated, DtmFailure } from './errors';
import { callTm, requestBranch } from './http';
import { checkOptions, encodePayload, httpTimeout, wireOptions, type TransOptions } from './options';
import { MsgSteps } from './steps';

/** Options of a two-phase message. */
export interface MsgOptions extends TransOptions {
  /** Deliver the steps at the same time rather than one after another. */
  readonly concurrent?: boolean;
}

/**
 * A two-phase message (reference §4.4): steps the TM delivers at least once, in order, after the AP's local
 * transaction committed, and never if it rolled back. Deliveries are retried until they succeed; a message never
 * rolls back once submitted.
 *
 * The usual way is {@link Msg.doAndSubmitDb}: prepare, run the local transaction behind the barrier, submit.
 * Serve the check-back with {@link BranchBarrier.queryPrepared} (see {@link queryPreparedHandler}) on the same
 * database, so that an AP that dies between its commit and the submit is still delivered.
 *
 * ```ts
 * const msg = new Msg(dtm, gid).add(`${bankB}/TransIn`, { account: 2, amount: 30 });
 * await msg.doAndSubmitDb(`${me}/queryPrepared`, store, async (tx) => {
 *   await tx.query('UPDATE account SET balance = balance - $1 WHERE id = $2', [30, 1]);
 * });
 * ```
 */
export class Msg extends MsgSteps<unknown, string> {
  constructor(
    readonly dtm: string,
    readonly gid: string,
    private readonly options: MsgOptions = {},
  ) {
    super();
    checkOptions(options);
  }

  /** Each step's payload is POSTed as JSON (undefined: a GET with no body). */
  protected encode(payload: unknown): string {
    return encodePayload(payload);
  }

  /** The prepare/submit body, as DTM's Go client builds it. */
  toJSON(): Record<string, unknown> {
    return {
      gid: this.gid,
      trans_type: 'msg',
      protocol: '',
      steps: this.steps,
      payloads: this.payloads,
      concurrent: this.options.concurrent ?? false,
      ...(this.queryPreparedUrl ? { query_prepared: this.queryPreparedUrl } : {}),
      ...(this.delayS > 0 ? { custom_data: this.customData() } : {}),
      ...wireOptions(this.options),
    };
  }

  private get timeoutMs(): number {
    return httpTimeout(this.options);
  }

  /**
   * Phase one: the TM stores the message as prepared and, if no submit or abort comes before `timeoutToFail`,
   * asks `queryPrepared` (GET `?gid=…&trans_type=msg&branch_id=00&op=msg`) whether the local transaction committed.
   */
  async prepare(queryPrepared?: string): Promise<void> {
    if (queryPrepared) this.queryPreparedUrl = queryPrepared;
    await callTm(this.dtm, 'prepare', this.toJSON(), this.timeoutMs);
  }

  /** Submits: the TM delivers the steps. Without a prepare first, a plain fire-and-forget outbox message. */
  async submit(): Promise<void> {
    await callTm(this.dtm, 'submit', this.toJSON(), this.timeoutMs);
  }

  /** Aborts a prepared message: it ends failed and nothing is delivered. */
  async abort(): Promise<void> {
    await callTm(this.dtm, 'abort', { gid: this.gid, trans_type: 'msg' }, this.timeoutMs);
  }

  /**
   * Prepare, local transaction, submit, in one call (DTM's `DoAndSubmit`). `busi` receives the message's barrier
   * (branch `00`, op `msg`) and must run the local transaction through it (as {@link Msg.doAndSubmitDb} does), so
   * the check-back can tell whether it committed.
   *
   * - `busi` resolves: submit.
   * - `busi` rejects with {@link DtmFailure}: abort, rethrow.
   * - any other rejection (a lost commit acknowledgement, {@link DtmDuplicated}): ask `queryPrepared` what
   *   happened; FAILURE → abort, success → submit, no answer → leave it to the TM's check-back. Then rethrow.
   *
   * @returns what `busi` resolved to
   * @throws busi's error; a TM error from prepare or submit (after a failed submit the TM's check-back still
   * delivers a committed message)
   */
  async doAndSubmit<T>(queryPrepared: string, busi: (bb: BranchBarrier) => Promise<T>): Promise<T> {
    return runDoAndSubmit(
      {
        gid: this.gid,
        prepare: () => this.prepare(queryPrepared),
        submit: () => this.submit(),
        abort: () => this.abort(),
        checkBack: () =>
          requestBranch({
            method: 'GET',
            url: queryPrepared,
            dtm: this.dtm,
            gid: this.gid,
            transType: 'msg',
            branchId: MSG_BARRIER.branchId,
            op: MSG_BARRIER.op,
            timeoutMs: this.timeoutMs,
          }),
      },
      busi,
    );
  }

  /**
   * {@link Msg.doAndSubmit} with `busi` run as a local transaction of `store` behind the barrier.
   *
   * @throws {@link DtmDuplicated} (after asking `queryPrepared`) when this gid's local transaction ran already, or the
   * check-back came first and sealed it as rolled back
   */
  async doAndSubmitDb<Tx, T>(
    queryPrepared: string,
    store: SqlBarrierStore<Tx>,
    busi: (tx: Tx) => Promise<T>,
  ): Promise<T> {
    return this.doAndSubmit(queryPrepared, async (bb) => msgBarrierValue(await bb.call(store, busi)));
  }
}

/**
 * DTM's `DoAndSubmit`, whatever the protocol: prepare; run `busi` behind the message's barrier; submit. When
 * `busi` throws DtmFailure, abort; on any other error ask the check-back (FAILURE → abort, success → submit, no
 * answer → leave it to the TM), then rethrow.
 */
export const runDoAndSubmit = async <T>(
  msg: {
    gid: string;
    prepare(): Promise<void>;
    submit(): Promise<void>;
    abort(): Promise<void>;
    checkBack(): Promise<unknown>;
  },
  busi: (bb: BranchBarrier) => Promise<T>,
): Promise<T> => {
  const bb = new BranchBarrier('msg', msg.gid, MSG_BARRIER.branchId, MSG_BARRIER.op);
  await msg.prepare();
  let result: T;
  try {
    result = await busi(bb);
  } catch (busiError) {
    let verdict: unknown;
    if (!(busiError instanceof DtmFailure)) {
      verdict = await msg.checkBack().then(
        () => 'committed',
        (e: unknown) => e,
      );
    }
    if (busiError instanceof DtmFailure || verdict instanceof DtmFailure) await msg.abort().catch(() => undefined);
    else if (verdict === 'committed') await msg.submit().catch(() => undefined);
    throw busiError;
  }
  await msg.submit();
  return result;
};

/** For op `msg` the barrier never skips: a repeat throws DtmDuplicated instead. */
export const msgBarrierValue = <T>(outcome: BarrierOutcome<T>): T => {
  if (outcome.status === 'executed') return outcome.value;
  throw new DtmDuplicated(`unexpected barrier skip for a msg: ${outcome.reason}`);
};
