/**
 * The message-bus port: where committed two-phase messages go when a step names a topic instead of an
 * HTTP consumer. (It sits beside its adapters until it moves to `@dtm-ts/ports`.)
 */

/** One message for the bus, as a committed msg step becomes it. */
export interface BusMessage {
  readonly topic: string;
  /** Messages with the same key stay in order (Kafka: one partition). The TM uses the gid. */
  readonly key: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Exactly the bytes to deliver. */
  readonly value: Uint8Array;
}

/** A durable log of messages that consumers read on their own (Kafka). */
export interface MessageBus {
  /**
   * Resolves once the bus acknowledged `message` durably (Kafka: every in-sync replica, acks = all).
   * Rejects on any failure, or when no acknowledgement came within `timeoutMs`. A message whose
   * publish rejected may still have been stored: delivery through a bus is at-least-once.
   */
  publish(message: BusMessage, opts: { readonly timeoutMs: number }): Promise<void>;
  /** Stops taking messages, sends what is queued, waits for the answers, then disconnects. */
  close(): Promise<void>;
}
