import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { runDedupConsumer, type DedupConsumer } from '@dtm-ts/adapters';
import { countDuplicates, startKafkaCollector, testConsumer, type KafkaCollector } from '../support/kafka-collector';
import { useKafkaTmFixture } from '../support/tm-harness';

const fx = useKafkaTmFixture();

const N = 1000;

describe('kafka delivery under load', () => {
  it(`when ${N} messages are submitted at once, then every one is delivered at least once, and the duplicates are counted and dropped by the consumer helper`, async () => {
    const run = randomUUID().slice(0, 8);
    const topic = `load-${run}`;
    const collector: KafkaCollector = await startKafkaCollector(fx.kafka.brokers, [topic]);
    // A second group through the consumer helper: it must see each delivery once.
    const handledGids = new Set<string>();
    let handledTwice = 0;
    const dedup: DedupConsumer = await runDedupConsumer({
      consumer: testConsumer(fx.kafka.brokers, `dedup-${run}`),
      topics: [topic],
      fromBeginning: true,
      handle: async (r) => {
        if (handledGids.has(r.gid)) handledTwice++;
        handledGids.add(r.gid);
      },
    });
    try {
      const gids = Array.from({ length: N }, (_, i) => `load-${run}-${i}`);
      let next = 0;
      const t0 = Date.now();
      await Promise.all(
        Array.from({ length: 50 }, async () => {
          while (next < N) {
            const i = next++;
            const res = await fx.dtm.post('/submit', {
              gid: gids[i],
              trans_type: 'msg',
              steps: [{ action: `kafka://${topic}` }],
              payloads: [JSON.stringify({ i })],
            });
            expect(res.status).toBe(200);
          }
        }),
      );
      const submittedMs = Date.now() - t0;
      await collector.waitUntil(
        () => countDuplicates(collector.records).distinct >= N,
        `${N} distinct records`,
        60_000,
      );
      const deliveredMs = Date.now() - t0;

      const byGid = new Map<string, number>();
      for (const r of collector.records) byGid.set(r.headers['dtm-gid']!, (byGid.get(r.headers['dtm-gid']!) ?? 0) + 1);
      expect(gids.filter((g) => !byGid.has(g))).toEqual([]);
      for (const r of collector.records) expect(JSON.parse(r.value.toString())).toEqual({ i: gids.indexOf(r.key!) });
      const { duplicates } = countDuplicates(collector.records);

      const statuses = await Promise.all(gids.map(async (g) => String((await fx.dtm.query(g)).transaction?.status)));
      expect(statuses.filter((s) => s !== 'succeed')).toEqual([]);

      await collector.waitUntil(
        () => dedup.stats.handled + dedup.stats.duplicates >= collector.records.length,
        'the consumer helper to read as many records',
      );
      expect(dedup.stats).toEqual({ handled: N, duplicates: duplicates, foreign: 0 });
      expect(handledTwice).toBe(0);
      console.log(
        `${N} messages: submitted in ${submittedMs} ms, all delivered after ${deliveredMs} ms; ` +
          `${collector.records.length} records, ${duplicates} duplicates (dropped by the consumer helper: ${dedup.stats.duplicates})`,
      );
    } finally {
      await dedup.stop();
      await collector.stop();
    }
  }, 120_000);
});
