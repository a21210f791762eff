import { callTm } from './http';
import { checkOptions, encodePayload, httpTimeout, wireOptions, type TransOptions } from './options';
import { SagaSteps } from './steps';

/** Options of a {@link Saga}: every {@link TransOptions} applies (`retryLimit` only to sagas). */
export type SagaOptions = TransOptions;

/**
 * A saga (reference §4.1): steps of `action` + `compensate` URLs that the TM calls in order, or concurrently with
 * {@link Saga.enableConcurrent}. If an action answers FAILURE (409), the TM calls the compensations of the steps
 * already done, in reverse order. Build it, then {@link Saga.submit} it once.
 *
 * ```ts
 * const saga = new Saga(dtm, await newGid(dtm))
 *   .add(`${bankA}/TransOut`, `${bankA}/TransOutRevert`, { account: 1, amount: 30 })
 *   .add(`${bankB}/TransIn`, `${bankB}/TransInRevert`, { account: 2, amount: 30 });
 * await saga.submit();
 * ```
 */
export class Saga extends SagaSteps<unknown, string> {
  /**
   * @param dtm the TM's API base, e.g. `http://localhost:36789/api/dtmsvr`
   * @param gid a unique id (see {@link newGid})
   */
  constructor(
    readonly dtm: string,
    readonly gid: string,
    private readonly options: SagaOptions = {},
  ) {
    super();
    checkOptions(options);
  }

  /** Each step's payload is sent as JSON to both URLs (undefined: a GET with no body). */
  protected encode(payload: unknown): string {
    return encodePayload(payload);
  }

  /** The submit body, as DTM's Go client builds it. */
  toJSON(): Record<string, unknown> {
    return {
      gid: this.gid,
      trans_type: 'saga',
      protocol: '',
      steps: this.steps,
      payloads: this.payloads,
      concurrent: this.concurrent,
      ...(this.concurrent ? { custom_data: this.customData() } : {}),
      ...wireOptions(this.options),
    };
  }

  /**
   * Submits the saga. Without `waitResult` it resolves as soon as the TM stored it; the TM then drives it to the
   * end. With `waitResult` it resolves once the saga succeeded in the first pass, and rejects with
   * {@link DtmFailure} when it did not (rolled back, or a branch will be retried later).
   *
   * @throws {@link DtmFailure} the TM refused (the gid is finished, or `waitResult` and not succeeded)
   * @throws {@link DtmTransportError} no usable answer: the saga may or may not be stored; submitting again is safe
   */
  async submit(): Promise<void> {
    await callTm(this.dtm, 'submit', this.toJSON(), httpTimeout(this.options));
  }
}
