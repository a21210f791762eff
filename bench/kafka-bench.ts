/**
 * npm run bench:kafka: committed two-phase messages per second, from submit to the record acknowledged
 * by Kafka, beside the raw kafkajs produce rate against the same broker in the same run.
 *
 * Broker: librdkafka's mock cluster (3 brokers, through kcat), as the tests use. The TM runs as its own
 * process (as users run it), with its own Redis (AOF everysec). Each of BENCH_CONCURRENCY clients keeps one
 * message in flight: it submits a msg with one `kafka://` step and `wait_result`, so the TM answers SUCCESS
 * only once the broker acknowledged the record (acks = all) and the result is recorded. A consumer group
 * then checks that every record arrived. For scale, the same TM delivers the same messages to a local HTTP
 * consumer that answers 200 at once. Env: BENCH_MESSAGES (default 5000), BENCH_CONCURRENCY (default 256).
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { Agent, request } from 'undici';
import { KafkaMessageBus } from '@dtm-ts/adapters';
import { freePort, startKafkaMock, startRedis } from '@dtm-ts/testing';

const N = Number(process.env.BENCH_MESSAGES ?? 5_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 256);
const WARM = Math.min(1_000, Math.ceil(N / 5));

const pct = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `total` tasks with at most `width` in flight; returns each task's latency in ms and the wall time. */
const closedLoop = async (
  total: number,
  width: number,
  task: (i: number) => Promise<void>,
): Promise<{ rate: number; p50: number; p99: number }> => {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(width, total) }, async () => {
      while (next < total) {
        const i = next++;
        const s = performance.now();
        await task(i);
        lat.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { rate: total / secs, p50: pct(lat, 50), p99: pct(lat, 99) };
};

const line = (label: string, r: { rate: number; p50: number; p99: number }, unit: string, note: string): string =>
  `  ${label.padEnd(10)}${r.rate.toFixed(0).padStart(7)} ${unit.padEnd(11)} p50 ${r.p50.toFixed(1)} ms   p99 ${r.p99.toFixed(1)} ms  (${note})`;

const main = async (): Promise<void> => {
  const run = Date.now().toString(36);
  const kafka = await startKafkaMock({ proxy: false });
  const brokers = [...kafka.brokers];
  const value = JSON.stringify({ amount: 30, order: 'order-1001' });

  // 1. Raw kafkajs: one record per send, acks = all, the same concurrency.
  const client = new Kafka({ clientId: 'bench-raw', brokers, logLevel: logLevel.NOTHING });
  const producer = client.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const rawSend = async (i: number): Promise<void> => {
    await producer.send({
      topic: `raw-${run}`,
      acks: -1,
      messages: [{ key: `raw-${i}`, value, headers: { 'dtm-gid': `raw-${i}`, 'dtm-branch-id': '01' } }],
    });
  };
  await closedLoop(WARM, CONCURRENCY, rawSend);
  const raw = await closedLoop(N, CONCURRENCY, rawSend);
  await producer.disconnect();

  // 2. The TM's Kafka adapter alone (batches what its callers publish together).
  const bus = new KafkaMessageBus({ brokers });
  const busSend = (i: number): Promise<void> =>
    bus.publish(
      { topic: `bus-${run}`, key: `bus-${i}`, headers: { 'dtm-gid': `bus-${i}` }, value: Buffer.from(value) },
      { timeoutMs: 30_000 },
    );
  await closedLoop(WARM, CONCURRENCY, busSend);
  const alone = await closedLoop(N, CONCURRENCY, busSend);
  await bus.close();

  // 3. Through the TM (own process), with its own Redis.
  const redis = await startRedis({ appendonly: true, appendfsync: 'everysec' });
  const port = await freePort();
  const tm = spawn(process.execPath, ['--import', 'tsx', 'services/tm/src/main.ts'], {
    env: {
      ...process.env,
      REDIS_URL: redis.url,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'error',
      METRICS_PORT: '0',
      KAFKA_BROKERS: kafka.bootstrap,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const http = new Agent({ connections: 128, keepAliveTimeout: 60_000 });
  const api = `http://127.0.0.1:${port}/api/dtmsvr`;
  for (let i = 0; ; i++) {
    try {
      const r = await request(`${api}/version`, { dispatcher: http });
      await r.body.text();
      if (r.statusCode === 200) break;
    } catch {
      if (i > 300) throw new Error('TM did not start');
    }
    await sleep(100);
  }
  const topic = `tm-${run}`;
  const rm = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"dtm_result":"SUCCESS"}'));
  });
  rm.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => rm.listen(0, '127.0.0.1', r));
  const rmUrl = `http://127.0.0.1:${(rm.address() as AddressInfo).port}/Deliver`;
  const submit =
    (prefix: string, action = `kafka://${topic}`) =>
    async (i: number) => {
      const r = await request(`${api}/submit`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          gid: `${prefix}-${run}-${i}`,
          trans_type: 'msg',
          steps: [{ action }],
          payloads: [value],
          wait_result: true,
        }),
        dispatcher: http,
      });
      const text = await r.body.text();
      if (r.statusCode !== 200) throw new Error(`submit ${prefix}-${i}: ${r.statusCode} ${text}`);
    };
  await closedLoop(WARM, CONCURRENCY, submit('warm'));
  const viaTm = await closedLoop(N, CONCURRENCY, submit('m'));
  await closedLoop(WARM, CONCURRENCY, submit('warm-http', rmUrl));
  const viaTmHttp = await closedLoop(N, CONCURRENCY, submit('h', rmUrl));
  rm.close();

  // Every committed message is in the topic (at least once).
  const consumer = client.consumer({ groupId: `bench-${run}`, maxWaitTimeInMs: 100 });
  const seen = new Map<string, number>();
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const gid = message.headers?.['dtm-gid']?.toString() ?? '';
      seen.set(gid, (seen.get(gid) ?? 0) + 1);
    },
  });
  const expected = N + WARM;
  const deadline = Date.now() + 60_000;
  while (seen.size < expected && Date.now() < deadline) await sleep(100);
  const records = [...seen.values()].reduce((a, b) => a + b, 0);
  await consumer.disconnect();

  tm.kill('SIGINT');
  await new Promise((r) => tm.once('exit', r));
  await http.close();
  await redis.stop();
  await kafka.stop();

  console.log(
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, node ${process.version}, load ${loadavg()[0]!.toFixed(1)}`,
  );
  console.log(
    `kafka: ${N} messages, ${CONCURRENCY} clients with one in flight each, librdkafka mock cluster (3 brokers), acks = all`,
  );
  console.log(line('TM', viaTm, 'msgs/s', 'submit with wait_result → record acknowledged and recorded'));
  console.log(line('TM http', viaTmHttp, 'msgs/s', 'the same, to a local HTTP consumer instead of Kafka'));
  console.log(line('raw', raw, 'records/s', 'kafkajs producer.send, one record per send, same broker'));
  console.log(line('adapter', alone, 'records/s', "the TM's KafkaMessageBus alone, batching concurrent publishes"));
  console.log(`  ratio     ${(viaTm.rate / raw.rate).toFixed(3)} (TM msgs/s ÷ raw records/s)`);
  console.log(`  consumed  ${seen.size} of ${expected} messages (warm-up included), ${records - seen.size} duplicates`);
  if (seen.size < expected) process.exitCode = 1;
};

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
