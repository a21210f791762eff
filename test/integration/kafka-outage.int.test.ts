import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { countDuplicates, startKafkaCollector, type KafkaCollector } from '../support/kafka-collector';
import { uniqueGid, useKafkaTmFixture } from '../support/tm-harness';
import { pause, waitFor } from '../support/wait';

/**
 * librdkafka's mock cannot come back on the same ports, so the harness fronts each broker with a proxy
 * on a fixed port: `kill` SIGKILLs the cluster process (a fresh one, empty, comes back behind the same
 * addresses on `start`), `cut`/`restore` is an outage of the network while the cluster keeps its data.
 */
const fx = useKafkaTmFixture();

const run = randomUUID().slice(0, 8);

/** Whether the TM recorded a failed call (a retry scheduled) of one of the transaction's branches. */
const retried = async (gid: string) =>
  ((await fx.dtm.get(`/events?gid=${encodeURIComponent(gid)}`)).body.events as { type: string }[]).some(
    (e) => e.type === 'BranchRetryScheduled',
  );
const submit = async (gid: string, topic: string, steps = 1) => {
  const res = await fx.dtm.post('/submit', {
    gid,
    trans_type: 'msg',
    steps: Array.from({ length: steps }, () => ({ action: `kafka://${topic}` })),
    payloads: Array.from({ length: steps }, (_, i) => JSON.stringify({ gid, step: i })),
    retry_interval: 1,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
};
const statusOf = async (gid: string) => String((await fx.dtm.query(gid)).transaction?.status);

/** Messages with a step that has no record yet, and the branch ids that have one. */
const missing = (collector: KafkaCollector, steps: ReadonlyMap<string, number>) =>
  [...steps]
    .map(([gid, n]) => ({
      gid,
      steps: n,
      delivered: [...new Set(collector.of(gid).map((r) => r.headers['dtm-branch-id']))],
    }))
    .filter((m) => m.delivered.length !== m.steps);
const allDelivered = (collector: KafkaCollector, steps: ReadonlyMap<string, number>) => () =>
  missing(collector, steps).length === 0;

describe('kafka broker outages', () => {
  it('when the broker is killed while messages wait for delivery and started again, then they are delivered once it is back and every transaction succeeds', async () => {
    const topic = `outage-kill-${run}`;
    let collector = await startKafkaCollector(fx.kafka.brokers, [topic]);
    // The TM's producer is connected and the topic exists before the crash.
    const before = uniqueGid('before-kill');
    await submit(before, topic);
    await collector.waitUntil(() => collector.of(before).length === 1, 'the record sent before the crash');
    await collector.stop();

    await fx.kafka.kill();
    const gids = Array.from({ length: 20 }, (_, i) => uniqueGid(`kill${i}`));
    const stepsOf = new Map(gids.map((g, i) => [g, 1 + (i % 2)]));
    await Promise.all(gids.map((g) => submit(g, topic, stepsOf.get(g))));
    // While it is down, produce attempts fail and are retried (the live marker); nothing may count as delivered.
    await waitFor(
      async () => (await Promise.all(gids.map(retried))).every(Boolean),
      'a failed produce recorded for every message',
      { timeout: 30_000, interval: 200 },
    );
    const whileDown = await Promise.all(gids.map(statusOf));
    expect(new Set(whileDown)).toEqual(new Set(['submitted']));
    const q = await fx.dtm.query(gids[0]!);
    expect(q.branches.every((b) => b.status !== 'succeed')).toBe(true);

    const downAt = Date.now();
    await fx.kafka.start();
    // The restarted cluster is empty: a new group reads what the TM produces from now on.
    collector = await startKafkaCollector(fx.kafka.brokers, [topic]);
    try {
      for (const g of gids) expect(await fx.dtm.waitFor(g, 'succeed', 30_000)).toMatchObject({ status: 'succeed' });
      await collector.waitUntil(allDelivered(collector, stepsOf), 'every step', 20_000).catch(() => undefined);
      expect(missing(collector, stepsOf)).toEqual([]);
      const mine = collector.records.filter((r) => stepsOf.has(r.headers['dtm-gid']!));
      const steps = [...stepsOf.values()].reduce((a, b) => a + b, 0);
      const { distinct, duplicates } = countDuplicates(mine);
      expect(distinct).toBe(steps);
      expect(Math.min(...mine.map((r) => r.timestamp))).toBeGreaterThanOrEqual(downAt);
      console.log(`kill/start: ${steps} steps of ${gids.length} messages delivered, ${duplicates} duplicates`);
    } finally {
      await collector.stop();
    }
  });

  it('when the network to the brokers is cut in the middle of a stream and restored, then every message is delivered at least once and none is lost', async () => {
    const topic = `outage-cut-${run}`;
    const collector = await startKafkaCollector(fx.kafka.brokers, [topic]);
    try {
      const gids = Array.from({ length: 200 }, (_, i) => uniqueGid(`cut${i}`));
      let next = 0;
      const submitting = Promise.all(
        Array.from({ length: 10 }, async () => {
          while (next < gids.length) await submit(gids[next++]!, topic);
        }),
      );
      await collector.waitUntil(() => collector.records.length >= 20, 'the first records of the stream');
      await fx.kafka.cut();
      const cutAt = Date.now();
      await submitting;
      await pause(Math.max(0, cutAt + 3_000 - Date.now())); // the cut lasts 3 s
      const delivered = new Set(collector.records.map((r) => r.headers['dtm-gid']));
      expect(delivered.size, 'some messages must still be waiting when the network comes back').toBeLessThan(200);
      await fx.kafka.restore();

      for (const g of gids) expect(await fx.dtm.waitFor(g, 'succeed', 30_000)).toMatchObject({ status: 'succeed' });
      const one = new Map(gids.map((g) => [g, 1]));
      await collector.waitUntil(allDelivered(collector, one), 'every message', 20_000).catch(() => undefined);
      expect(missing(collector, one)).toEqual([]);
      const { distinct, duplicates } = countDuplicates(collector.records);
      expect(distinct).toBe(200);
      console.log(`cut/restore: 200 messages delivered, ${duplicates} duplicates`);
    } finally {
      await collector.stop();
    }
  });
});
