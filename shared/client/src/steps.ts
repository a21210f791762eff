/**
 * The steps of a saga, whatever the protocol the AP speaks to the TM: action and compensation URLs, one payload
 * per step (in the form the protocol carries it: JSON text over HTTP, bytes over gRPC), and the order of concurrent
 * steps.
 */
export abstract class SagaSteps<In, Stored> {
  protected readonly steps: { action: string; compensate: string }[] = [];
  protected readonly payloads: Stored[] = [];
  protected readonly orders: Record<number, number[]> = {};
  protected concurrent = false;

  /** A payload as this protocol sends it. */
  protected abstract encode(payload: In | undefined): Stored;

  /** Adds a step; `payload` goes to both URLs. An empty `compensate` means the step needs no compensation. */
  add(action: string, compensate: string, payload?: In): this {
    this.steps.push({ action, compensate });
    this.payloads.push(this.encode(payload));
    return this;
  }

  /**
   * Concurrent sagas: step `branch` (0-based, in `add` order) starts only after every step in `preBranches`
   * succeeded; its compensation runs before theirs.
   */
  addBranchOrder(branch: number, preBranches: readonly number[]): this {
    this.orders[branch] = [...preBranches];
    return this;
  }

  /** Lets the TM run steps at the same time (subject to {@link SagaSteps.addBranchOrder}). */
  enableConcurrent(): this {
    this.concurrent = true;
    return this;
  }

  /** `custom_data` as DTM's clients build it: the orders of a concurrent saga, else ''. */
  protected customData(): string {
    return this.concurrent ? JSON.stringify({ orders: this.orders, concurrent: true }) : '';
  }
}

/** The steps of a two-phase message, whatever the protocol (see {@link SagaSteps}). */
export abstract class MsgSteps<In, Stored> {
  protected readonly steps: { action: string }[] = [];
  protected readonly payloads: Stored[] = [];
  protected delayS = 0;
  protected queryPreparedUrl = '';

  protected abstract encode(payload: In | undefined): Stored;

  /** Adds a step: the TM calls `action` with `payload`. */
  add(action: string, payload?: In): this {
    this.steps.push({ action });
    this.payloads.push(this.encode(payload));
    return this;
  }

  /** Adds a step delivered to every subscriber of `topic` (`topic://<topic>`). */
  addTopic(topic: string, payload?: In): this {
    return this.add(`topic://${topic}`, payload);
  }

  /** Delivers the steps no earlier than `seconds` after the message was created. */
  setDelay(seconds: number): this {
    if (!Number.isInteger(seconds) || seconds < 0) throw new TypeError('delay must be a whole number of seconds');
    this.delayS = seconds;
    return this;
  }

  /** `custom_data` as DTM's clients build it: the delay when set, else ''. */
  protected customData(): string {
    return this.delayS > 0 ? JSON.stringify({ delay: this.delayS }) : '';
  }
}
