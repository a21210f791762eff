import {
  Kafka,
  logLevel,
  Partitioners,
  type KafkaConfig,
  type Message,
  type Producer,
  type SASLOptions,
} from 'kafkajs';
import type { BusMessage, MessageBus } from '@dtm-ts/ports';

/** Options of {@link KafkaMessageBus}. */
export interface KafkaMessageBusOptions {
  /** Bootstrap brokers, `host:port`. */
  readonly brokers: readonly string[];
  readonly clientId?: string;
  /** TLS with the system CAs. */
  readonly ssl?: boolean;
  readonly sasl?: {
    readonly mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
    readonly username: string;
    readonly password: string;
  };
  /** Quick retries of a failed produce request before its publishes fail (default 2). The TM retries after that. */
  readonly retries?: number;
  /** Connecting to one broker (default 3 s). */
  readonly connectionTimeoutMs?: number;
  /** How long the brokers may take to acknowledge a batch, acks = all (default 10 s). */
  readonly ackTimeoutMs?: number;
  /** Most records in one produce request (default 500). */
  readonly maxBatchRecords?: number;
  /**
   * Most payload bytes in one produce request (default 512 KiB; a larger record goes alone). Below the
   * brokers' usual `message.max.bytes` (1 MiB), so batching never turns acceptable records into a refused batch.
   */
  readonly maxBatchBytes?: number;
  /** Produce requests in flight at once (default 4); records published meanwhile wait and go together. */
  readonly maxInFlightBatches?: number;
  /**
   * Let the brokers create a topic on the first record to it, where they allow it (default false:
   * KAFKA_AUTO_CREATE_TOPICS). Off, a record to a missing topic fails like any produce error.
   */
  readonly allowAutoTopicCreation?: boolean;
  /** Why a topic may not be produced to (KAFKA_TOPIC_ALLOW), or null; checked on every publish. */
  readonly topicRefusal?: (topic: string) => string | null;
  /** kafkajs's warnings and errors (connection trouble while a broker is down, …). */
  readonly log?: (level: 'warn' | 'info', message: string, fields: Record<string, unknown>) => void;
}

/** The publish of a record took longer than its caller allowed; the record may still be stored. */
export class PublishTimeout extends Error {
  override readonly name = 'PublishTimeout';
}

/** A publish to a topic the TM may not produce to (KAFKA_TOPIC_ALLOW). */
export class TopicRefused extends Error {
  override readonly name = 'TopicRefused';
}

interface Pending {
  readonly topic: string;
  readonly message: Message;
  readonly bytes: number;
  settled: boolean;
  timer: NodeJS.Timeout | undefined;
  resolve(): void;
  reject(err: Error): void;
}

/**
 * Publishes to Kafka through one kafkajs producer per process: acks = all, bounded retries, not
 * idempotent (delivery is at-least-once anyway, and the consumers drop duplicates). Records published
 * in the same tick, or while earlier batches are in flight, go out together in one produce request;
 * each caller is answered once the request that carried its record was acknowledged.
 */
export class KafkaMessageBus implements MessageBus {
  private readonly producer: Producer;
  private readonly ackTimeoutMs: number;
  private readonly maxBatchRecords: number;
  private readonly maxBatchBytes: number;
  private readonly maxInFlight: number;
  private readonly retries: number;
  private readonly topicRefusal: ((topic: string) => string | null) | undefined;
  private queue: Pending[] = [];
  private inFlight = 0;
  private flushScheduled = false;
  private readonly sending = new Set<Promise<void>>();
  private connecting: Promise<void> | null = null;
  private closing = false;

  constructor(opts: KafkaMessageBusOptions) {
    this.ackTimeoutMs = opts.ackTimeoutMs ?? 10_000;
    this.maxBatchRecords = opts.maxBatchRecords ?? 500;
    this.maxBatchBytes = opts.maxBatchBytes ?? 512 * 1024;
    this.maxInFlight = opts.maxInFlightBatches ?? 4;
    this.retries = opts.retries ?? 2;
    this.topicRefusal = opts.topicRefusal;
    const log = opts.log;
    const config: KafkaConfig = {
      clientId: opts.clientId ?? 'dtm-ts',
      brokers: [...opts.brokers],
      ssl: opts.ssl ?? false,
      sasl: opts.sasl ? ({ ...opts.sasl } as SASLOptions) : undefined,
      connectionTimeout: opts.connectionTimeoutMs ?? 3_000,
      requestTimeout: this.ackTimeoutMs + 5_000,
      // Connecting and metadata; produce requests are retried below instead.
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1_000 },
      logLevel: log ? logLevel.WARN : logLevel.NOTHING,
      logCreator:
        () =>
        ({ namespace, level, log: entry }) => {
          const { message, timestamp: _t, logger: _l, stack: _s, ...fields } = entry;
          log?.(level <= logLevel.WARN ? 'warn' : 'info', `kafkajs ${namespace}: ${message}`, fields);
        },
    };
    this.producer = new Kafka(config).producer({
      idempotent: false,
      allowAutoTopicCreation: opts.allowAutoTopicCreation ?? false,
      // Murmur2 of the key, as the Java client: a gid lands on the same partition whoever produces it.
      createPartitioner: Partitioners.DefaultPartitioner,
      // kafkajs 2.2.4 loses records when it retries a send itself: it keeps the answers of brokers that
      // succeeded and skips them on the retry, even when a partition has meanwhile moved to one of them
      // (tulios/kafkajs#1303, #1798). The acknowledgement is then a lie. So every retry here is a new send.
      retry: { retries: 0 },
    });
  }

  publish(message: BusMessage, opts: { readonly timeoutMs: number }): Promise<void> {
    if (this.closing) return Promise.reject(new Error('the Kafka message bus is closed'));
    const refused = this.topicRefusal?.(message.topic);
    if (refused) return Promise.reject(new TopicRefused(refused));
    return new Promise<void>((resolve, reject) => {
      const value = Buffer.from(message.value.buffer, message.value.byteOffset, message.value.byteLength);
      let bytes = value.length + Buffer.byteLength(message.key);
      for (const k in message.headers) bytes += k.length + Buffer.byteLength(message.headers[k]!);
      const pending: Pending = {
        topic: message.topic,
        message: { key: message.key, value, headers: { ...message.headers } },
        bytes,
        settled: false,
        timer: undefined,
        resolve,
        reject,
      };
      pending.timer = setTimeout(() => {
        settle(
          pending,
          new PublishTimeout(`no acknowledgement from Kafka within ${opts.timeoutMs} ms (the record may still arrive)`),
        );
      }, opts.timeoutMs);
      this.queue.push(pending);
      this.schedule();
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    while (this.queue.length > 0 || this.sending.size > 0) {
      this.drain();
      await Promise.allSettled([...this.sending]);
    }
    if (this.connecting) {
      await this.connecting.catch(() => undefined);
      await this.producer.disconnect();
    }
  }

  /** Flushes on the next turn of the event loop, so that the records of one tick share a request. */
  private schedule(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.drain();
    });
  }

  private drain(): void {
    while (this.inFlight < this.maxInFlight) {
      const batch = this.take();
      if (batch.length === 0) return;
      this.inFlight++;
      const sent: Promise<void> = this.send(batch).finally(() => {
        this.inFlight--;
        this.sending.delete(sent);
        if (this.queue.length > 0) this.schedule();
      });
      this.sending.add(sent);
    }
  }

  /** The next batch off the queue, skipping records whose callers gave up. */
  private take(): Pending[] {
    const batch: Pending[] = [];
    let bytes = 0;
    let i = 0;
    for (; i < this.queue.length && batch.length < this.maxBatchRecords; i++) {
      const p = this.queue[i]!;
      if (p.settled) continue;
      if (batch.length > 0 && bytes + p.bytes > this.maxBatchBytes) break;
      batch.push(p);
      bytes += p.bytes;
    }
    this.queue = i === this.queue.length ? [] : this.queue.slice(i);
    return batch;
  }

  /**
   * Sends a batch, retrying a failure a few times with a whole new produce request for the records whose
   * callers still wait. Records that a broker did store before the failure are sent again (at-least-once).
   */
  private async send(batch: Pending[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const waiting = batch.filter((p) => !p.settled);
      if (waiting.length === 0) return;
      try {
        await this.connect();
        const byTopic = new Map<string, Message[]>();
        for (const p of waiting) {
          const list = byTopic.get(p.topic);
          if (list) list.push(p.message);
          else byTopic.set(p.topic, [p.message]);
        }
        await this.producer.sendBatch({
          acks: -1,
          timeout: this.ackTimeoutMs,
          topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
        });
        for (const p of waiting) settle(p, null);
        return;
      } catch (err) {
        if (attempt >= this.retries) {
          const e = err instanceof Error ? err : new Error(String(err));
          for (const p of waiting) settle(p, e);
          return;
        }
        await sleep(Math.min(1_000, 100 * 2 ** attempt));
      }
    }
  }

  /** Connects once, lazily: a TM starts while Kafka is down, and a failed connect is tried again next time. */
  private connect(): Promise<void> {
    this.connecting ??= this.producer.connect().catch((err: unknown) => {
      this.connecting = null;
      throw err;
    });
    return this.connecting;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const settle = (p: Pending, err: Error | null): void => {
  if (p.settled) return;
  p.settled = true;
  clearTimeout(p.timer);
  if (err) p.reject(err);
  else p.resolve();
};
