import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningTm } from '@dtm-ts/tm';
import { startBranchPeer, type BranchPeer } from '../peers/http-branch-peer';
import { startKafkaCollector, type KafkaCollector } from '../support/kafka-collector';
import { dtmClient, startTestTm, uniqueGid, useKafkaTmFixture } from '../support/tm-harness';

const fx = useKafkaTmFixture();
let peer: BranchPeer;
let collector: KafkaCollector;

const run = randomUUID().slice(0, 8);
const topic = {
  orders: `orders-${run}`,
  audit: `audit-${run}`,
  checkBack: `check-back-${run}`,
  mixed: `mixed-${run}`,
};

beforeAll(async () => {
  peer = await startBranchPeer();
  collector = await startKafkaCollector(fx.kafka.brokers, Object.values(topic));
});
afterAll(async () => {
  await collector?.stop();
  await peer?.close();
});

const ok = { status: 200, body: { dtm_result: 'SUCCESS' } };
const kafkaMsg = (
  gid: string,
  steps: { action: string }[],
  payloads: string[],
  extra: Record<string, unknown> = {},
) => ({
  gid,
  trans_type: 'msg',
  steps,
  payloads,
  query_prepared: peer.url(`${gid}/QueryPrepared`),
  ...extra,
});

describe('kafka delivery of committed messages', () => {
  it('when a message with Kafka steps is submitted, then each step is one record keyed by gid, with the dtm headers and the payload byte for byte', async () => {
    const gid = uniqueGid('kafka-plain');
    // Not ASCII, not JSON, a newline and a NUL: the value must be exactly these UTF-8 bytes.
    const payloads = ['{"amount":30,"who":"Zoë 😀"}', 'line one\nline two \u0000 end'];
    const res = await fx.dtm.post(
      '/submit',
      kafkaMsg(gid, [{ action: `kafka://${topic.orders}` }, { action: `kafka://${topic.audit}` }], payloads, {
        branch_headers: { 'x-api-key': 'secret-for-http-consumers' },
      }),
    );
    expect(res).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed');
    await collector.waitUntil(() => collector.of(gid).length >= 2, `records of ${gid}`);
    // A second record of a step would be in before a later record with the same key (one partition).
    await Promise.all([collector.flush(topic.orders, gid), collector.flush(topic.audit, gid)]);
    // Two topics: the consumer may see them in either order.
    const records = collector
      .of(gid)
      .sort((a, b) => a.headers['dtm-branch-id']!.localeCompare(b.headers['dtm-branch-id']!));
    expect(records.map((r) => r.topic)).toEqual([topic.orders, topic.audit]);
    records.forEach((r, i) => {
      expect(r.key).toBe(gid);
      expect(r.headers).toEqual({
        'dtm-gid': gid,
        'dtm-branch-id': `0${i + 1}`,
        'dtm-trans-type': 'msg',
        // Tracing (when on) adds its own; nothing else of the branch headers is copied.
        ...(r.headers.traceparent !== undefined ? { traceparent: expect.stringMatching(/^00-/) } : {}),
      });
      expect(r.value.equals(Buffer.from(payloads[i]!, 'utf8'))).toBe(true);
    });
    // Steps are delivered in order: the second was produced only after the first was acknowledged.
    expect(records[1]!.timestamp).toBeGreaterThanOrEqual(records[0]!.timestamp);
  });

  it('when a call carries a traceparent, then the record carries it too', async () => {
    const gid = uniqueGid('kafka-trace');
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    await fx.dtm.post(
      '/submit',
      kafkaMsg(gid, [{ action: `kafka://${topic.orders}` }], ['{}'], { branch_headers: { traceparent } }),
    );
    await collector.waitUntil(() => collector.of(gid).length >= 1, `record of ${gid}`);
    expect(collector.of(gid)[0]!.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
  });

  it('when a prepared message is checked back and answers SUCCESS, then its record is produced, and not before', async () => {
    const gid = uniqueGid('kafka-cb-ok');
    peer.script(`${gid}/QueryPrepared`, [425, 200]);
    const body = kafkaMsg(gid, [{ action: `kafka://${topic.checkBack}` }], ['{"order":1}'], {
      timeout_to_fail: 1,
      retry_interval: 1,
    });
    expect(await fx.dtm.post('/prepare', body)).toEqual(ok);
    // The first check-back said ONGOING: still uncommitted, so nothing may be in the topic.
    await collector.waitUntil(() => peer.callsTo(`${gid}/QueryPrepared`).length >= 1, 'first check-back');
    await collector.flush(topic.checkBack, gid);
    expect(collector.of(gid)).toEqual([]);
    expect((await fx.dtm.query(gid)).transaction?.status).toBe('prepared');
    await fx.dtm.waitFor(gid, 'succeed', 15_000);
    await collector.waitUntil(() => collector.of(gid).length >= 1, `record of ${gid}`);
    expect(peer.callsTo(`${gid}/QueryPrepared`)).toHaveLength(2);
    expect(collector.of(gid)[0]!.value.toString()).toBe('{"order":1}');
  });

  it('when the check-back answers FAILURE, then the message fails and no record is produced', async () => {
    const gid = uniqueGid('kafka-cb-fail');
    peer.script(`${gid}/QueryPrepared`, [409]);
    await fx.dtm.post(
      '/prepare',
      kafkaMsg(gid, [{ action: `kafka://${topic.checkBack}` }], ['{"order":2}'], { timeout_to_fail: 1 }),
    );
    await fx.dtm.waitFor(gid, 'failed', 10_000);
    // A later message on the same topic gets through, so the TM's producer is not just slow.
    const marker = uniqueGid('kafka-marker');
    await fx.dtm.post('/submit', kafkaMsg(marker, [{ action: `kafka://${topic.checkBack}` }], ['{}']));
    await collector.waitUntil(() => collector.of(marker).length >= 1, 'the marker record');
    // And a record keyed by the gid, produced now, arrives: anything the TM produced for it before is in.
    await collector.flush(topic.checkBack, gid);
    expect(collector.of(gid)).toEqual([]);
    expect(collector.records.filter((r) => r.key === gid)).toEqual([]);
  });

  it('when a message mixes an HTTP step and a Kafka step, then both are delivered in order by the same retrying machinery', async () => {
    const gid = uniqueGid('kafka-mixed');
    peer.script(`${gid}/in0`, [500, 200]);
    await fx.dtm.post(
      '/submit',
      kafkaMsg(
        gid,
        [{ action: peer.url(`${gid}/in0`) }, { action: `kafka://${topic.mixed}` }],
        ['{"http":1}', '{"kafka":2}'],
        {
          retry_interval: 1,
        },
      ),
    );
    await fx.dtm.waitFor(gid, 'succeed', 15_000);
    await collector.waitUntil(() => collector.of(gid).length >= 1, `record of ${gid}`);
    const http = peer.callsTo(`${gid}/in0`);
    expect(http.map((c) => c.query.branch_id)).toEqual(['01', '01']);
    const [record] = collector.of(gid);
    expect(record!.headers['dtm-branch-id']).toBe('02');
    expect(record!.value.toString()).toBe('{"kafka":2}');
    // The Kafka step waited for the HTTP step's success (its second call).
    expect(record!.timestamp).toBeGreaterThanOrEqual(http[1]!.at);
    const q = await fx.dtm.query(gid);
    expect(q.branches.map((b) => [b.url, b.status])).toEqual([
      [peer.url(`${gid}/in0`), 'succeed'],
      [`kafka://${topic.mixed}`, 'succeed'],
    ]);
  });

  it('when a concurrent message mixes HTTP and Kafka steps, then both are delivered', async () => {
    const gid = uniqueGid('kafka-mixed-conc');
    peer.script(`${gid}/in0`, [{ status: 200, delayMs: 300 }]);
    await fx.dtm.post(
      '/submit',
      kafkaMsg(gid, [{ action: peer.url(`${gid}/in0`) }, { action: `kafka://${topic.mixed}` }], ['{}', '{}'], {
        concurrent: true,
      }),
    );
    await fx.dtm.waitFor(gid, 'succeed');
    await collector.waitUntil(() => collector.of(gid).length >= 1, `record of ${gid}`);
    expect(peer.callsTo(`${gid}/in0`)).toHaveLength(1);
  });
});

describe('bad kafka steps', () => {
  const keyCount = async (t: RunningTm) => (await t.infra.redis.keys(`${t.infra.config.prefix}:*`)).length;
  const cases: [string, string, RegExp][] = [
    ['no topic', 'kafka://', /'' is not a Kafka topic name/],
    ['a space in the topic', 'kafka://two words', /is not a Kafka topic name/],
    ['a path', 'kafka://orders/eu', /is not a Kafka topic name/],
    ['the topic ..', 'kafka://..', /is not a Kafka topic name/],
  ];
  for (const [what, action, message] of cases) {
    it(`when a Kafka step has ${what}, then 422 and nothing is written`, async () => {
      const before = await keyCount(fx.tm);
      const res = await fx.dtm.post('/submit', { gid: uniqueGid('bad'), trans_type: 'msg', steps: [{ action }] });
      expect(res.status).toBe(422);
      expect(String(res.body.message)).toMatch(message);
      expect(await keyCount(fx.tm)).toBe(before);
    });
  }

  it('when a saga step names a Kafka topic, then 422: only messages are produced to Kafka', async () => {
    const res = await fx.dtm.post('/submit', {
      gid: uniqueGid('bad-saga'),
      trans_type: 'saga',
      steps: [{ action: `kafka://${topic.orders}`, compensate: '' }],
    });
    expect(res.status).toBe(422);
    expect(String(res.body.message)).toMatch(/must be an http\(s\) URL/);
  });

  it('when the TM has no KAFKA_BROKERS, then a Kafka step is refused at prepare and at submit with 422, and nothing is written', async () => {
    const plain = await startTestTm(fx.redis.url);
    try {
      const client = dtmClient(plain.url);
      for (const path of ['/prepare', '/submit']) {
        const before = await keyCount(plain);
        const res = await client.post(path, {
          gid: uniqueGid('no-kafka'),
          trans_type: 'msg',
          steps: [{ action: `kafka://${topic.orders}` }],
          query_prepared: peer.url('QueryPrepared'),
        });
        expect(res.status).toBe(422);
        expect(String(res.body.message)).toMatch(/KAFKA_BROKERS/);
        expect(await keyCount(plain)).toBe(before);
      }
    } finally {
      await plain.close();
    }
  });
});
