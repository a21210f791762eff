/**
 * Example consumer service for messages that dtm-ts delivers to Kafka (README, "Kafka delivery").
 *
 * It joins a consumer group, handles each committed message step once per (gid, branch id), and
 * prints one JSON line per record: `handled`, or `duplicate` when the TM (or a rebalance) delivered it
 * again. Replace `handle` with your own work; keep it idempotent, or dedup durably (see DedupStore).
 *
 *   KAFKA_BROKERS=localhost:9092 KAFKA_TOPICS=orders npx tsx examples/kafka-consumer/main.ts
 *
 * Env: KAFKA_BROKERS, KAFKA_TOPICS (comma lists, required), KAFKA_GROUP_ID (default dtm-example-consumer),
 * KAFKA_FROM_BEGINNING (default false), KAFKA_MAX_WAIT_MS (longest fetch wait, default 5000), KAFKA_SSL,
 * KAFKA_SASL_MECHANISM / _USERNAME / _PASSWORD.
 */
import { Kafka, logLevel, type SASLOptions } from 'kafkajs';
// The helper depends on kafkajs only: copy the file into your service.
import { runDedupConsumer, type DtmRecord } from '../../shared/adapters/src/kafka/dedup-consumer';

const env = process.env;
const list = (name: string): string[] => {
  const v = (env[name] ?? '').split(',').map((s) => s.trim());
  if (v.every((s) => s === '')) {
    console.error(`${name} is required (a comma-separated list)`);
    process.exit(2);
  }
  return v.filter((s) => s !== '');
};
const flag = (name: string): boolean => ['1', 'true', 'yes', 'on'].includes((env[name] ?? '').toLowerCase());

const sasl = (): SASLOptions | undefined => {
  const mechanism = env.KAFKA_SASL_MECHANISM;
  if (!mechanism) return undefined;
  if (mechanism !== 'plain' && mechanism !== 'scram-sha-256' && mechanism !== 'scram-sha-512') {
    console.error(`KAFKA_SASL_MECHANISM must be plain, scram-sha-256 or scram-sha-512, not ${mechanism}`);
    process.exit(2);
  }
  return { mechanism, username: env.KAFKA_SASL_USERNAME ?? '', password: env.KAFKA_SASL_PASSWORD ?? '' };
};

const line = (event: string, fields: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
};
const describe = (r: DtmRecord) => ({
  gid: r.gid,
  branch_id: r.branchId,
  topic: r.topic,
  partition: r.partition,
  offset: r.offset,
});

/** Your work for one committed message step (here: print it). */
const handle = (r: DtmRecord): Promise<void> => {
  line('handled', { ...describe(r), value: r.value.toString('utf8') });
  return Promise.resolve();
};

const main = async (): Promise<void> => {
  const kafka = new Kafka({
    clientId: env.KAFKA_CLIENT_ID ?? 'dtm-example-consumer',
    brokers: list('KAFKA_BROKERS'),
    ssl: flag('KAFKA_SSL'),
    sasl: sasl(),
    logLevel: logLevel.WARN,
  });
  const consumer = kafka.consumer({
    groupId: env.KAFKA_GROUP_ID ?? 'dtm-example-consumer',
    // Notice a dead broker or member within seconds, not kafkajs's default 30.
    sessionTimeout: 10_000,
    heartbeatInterval: 1_000,
    maxWaitTimeInMs: Number(env.KAFKA_MAX_WAIT_MS ?? 5_000),
  });
  consumer.on(consumer.events.GROUP_JOIN, (e) => line('ready', { member: e.payload.memberId }));
  const running = await runDedupConsumer({
    consumer,
    topics: list('KAFKA_TOPICS'),
    fromBeginning: flag('KAFKA_FROM_BEGINNING'),
    handle,
    onDuplicate: (r) => line('duplicate', describe(r)),
  });

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    running
      .stop()
      .then(() => {
        line('stopped', { signal, ...running.stats });
        process.exit(0);
      })
      .catch((err: unknown) => {
        console.error('stop failed', err);
        process.exit(1);
      });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
};

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
