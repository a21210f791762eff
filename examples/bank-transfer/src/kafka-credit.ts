import { Kafka, logLevel } from 'kafkajs';
import { BranchBarrier } from '@dtm-ts/client';
import type { BankDb } from './bank-db';

/** The payload of a Kafka-delivered msg transfer's credit (see BankService.sendByMsg's `kafkaTopic`). */
interface KafkaCredit {
  readonly bank: string;
  readonly account: number;
  readonly amount: number;
}

/** A consumer group applying the credits of Kafka-delivered msg transfers. */
export interface KafkaCreditConsumer {
  /** Records handled per `<gid>/<branch id>` (more than 1: Kafka delivered it again; the barrier absorbed it). */
  readonly received: Map<string, number>;
  /** Times it had to be started again after a crash kafkajs does not recover from. */
  readonly restarts: number;
  stop(): Promise<void>;
}

/**
 * The receiving side of a msg transfer delivered through Kafka: reads `topic` and applies each record's credit to
 * the bank its payload names, behind the barrier keyed by the record's `dtm-gid` and `dtm-branch-id` headers. Kafka
 * delivers at least once (a lost acknowledgement, a consumer restart, a TM that produced twice): a repeated record
 * finds its barrier row and changes nothing. A record is only committed once its credit committed; an error
 * (the database down) makes kafkajs deliver it again.
 */
export const startKafkaCredit = async (opts: {
  brokers: readonly string[];
  topic: string;
  groupId: string;
  /** The books of the bank at `url` (the payload's `bank`). */
  bankAt: (url: string) => BankDb;
}): Promise<KafkaCreditConsumer> => {
  const consumer = new Kafka({
    clientId: opts.groupId,
    brokers: [...opts.brokers],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    // A broker outage or restart: keep trying, quickly (kafkajs' defaults give up after a few tries).
    retry: { retries: 1_000_000, initialRetryTime: 100, maxRetryTime: 1_000 },
  }).consumer({ groupId: opts.groupId, sessionTimeout: 6_000, heartbeatInterval: 500, maxWaitTimeInMs: 100 });
  const received = new Map<string, number>();
  let restarts = 0;
  // kafkajs restarts a consumer after a retriable crash by itself; after any other (the group or topic gone with
  // a broker that lost its memory) it stays down unless told to run again.
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (payload.restart) return;
    restarts++;
    setTimeout(
      () =>
        void consumer
          .connect()
          .then(run)
          .catch(() => undefined),
      1_000,
    );
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [opts.topic], fromBeginning: true });
  const run = () =>
    consumer.run({
      eachMessage: async ({ message }) => {
        const gid = message.headers?.['dtm-gid']?.toString() ?? '';
        const branchId = message.headers?.['dtm-branch-id']?.toString() ?? '';
        const credit = JSON.parse(message.value?.toString('utf8') ?? '{}') as KafkaCredit;
        const db = opts.bankAt(credit.bank);
        await new BranchBarrier('msg', gid, branchId, 'action').call(db.store, (tx) =>
          db.credit(tx, gid, 'kafka', credit.account, credit.amount),
        );
        // Counted once handled: a record whose credit failed comes again, and only then counts.
        const key = `${gid}/${branchId}`;
        received.set(key, (received.get(key) ?? 0) + 1);
      },
    });
  await run();
  return {
    received,
    get restarts() {
      return restarts;
    },
    stop: () => consumer.disconnect(),
  };
};
