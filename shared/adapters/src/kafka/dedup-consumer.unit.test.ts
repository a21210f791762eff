import { describe, expect, it } from 'vitest';
import type { Consumer, ConsumerRunConfig, EachMessagePayload, KafkaMessage } from 'kafkajs';
import { dedupKey, dtmRecordOf, MemoryDedupStore, runDedupConsumer, type DtmRecord } from './dedup-consumer';

const message = (headers: Record<string, string>, value = '{"amount":30}', offset = '0'): KafkaMessage => ({
  key: Buffer.from(headers['dtm-gid'] ?? ''),
  value: Buffer.from(value),
  timestamp: '0',
  attributes: 0,
  offset,
  headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Buffer.from(v)])),
});
const fromTm = (gid: string, branchId: string, offset = '0') =>
  message({ 'dtm-gid': gid, 'dtm-branch-id': branchId, 'dtm-trans-type': 'msg' }, `{"gid":"${gid}"}`, offset);

/** A kafkajs consumer stand-in: `deliver` plays one record through the handler that `run` received. */
const fakeConsumer = () => {
  let run: ConsumerRunConfig | undefined;
  const consumer = {
    connect: () => Promise.resolve(),
    subscribe: () => Promise.resolve(),
    run: (config: ConsumerRunConfig) => {
      run = config;
      return Promise.resolve();
    },
    disconnect: () => Promise.resolve(),
  } as unknown as Consumer;
  const deliver = (m: KafkaMessage): Promise<void> =>
    run!.eachMessage!({ topic: 'orders', partition: 0, message: m } as EachMessagePayload);
  return { consumer, deliver };
};

describe('reading dtm-ts records', () => {
  it('when a record has the dtm headers, then gid, branch id, trans type and value are read from it', () => {
    const r = dtmRecordOf(
      'orders',
      2,
      message({ 'dtm-gid': 'g1', 'dtm-branch-id': '01-02', 'dtm-trans-type': 'msg', traceparent: '00-a-b-01' }),
    );
    expect(r).toMatchObject({ gid: 'g1', branchId: '01-02', transType: 'msg', traceparent: '00-a-b-01', partition: 2 });
    expect(r!.value.toString()).toBe('{"amount":30}');
  });

  it('when a record lacks them, then it is not a dtm-ts record', () => {
    expect(dtmRecordOf('orders', 0, message({ 'dtm-gid': 'g1' }))).toBeNull();
    expect(dtmRecordOf('orders', 0, message({}))).toBeNull();
  });

  it('the dedup key tells gid and branch apart even when the gid has a slash', () => {
    expect(dedupKey({ gid: 'a/b', branchId: '01' })).not.toBe(dedupKey({ gid: 'a', branchId: 'b/01' }));
  });

  it('when the memory store is full, then the oldest key is forgotten first', () => {
    const store = new MemoryDedupStore(2);
    store.add('a');
    store.add('b');
    store.add('c');
    expect([store.has('a'), store.has('b'), store.has('c')]).toEqual([false, true, true]);
  });
});

describe('dedup consumer', () => {
  it('when the same (gid, branch id) arrives twice, then it is handled once and the duplicate is counted', async () => {
    const { consumer, deliver } = fakeConsumer();
    const handled: DtmRecord[] = [];
    const dropped: string[] = [];
    const running = await runDedupConsumer({
      consumer,
      topics: ['orders'],
      handle: async (r) => {
        handled.push(r);
      },
      onDuplicate: (r) => dropped.push(r.offset),
    });
    await deliver(fromTm('g1', '01', '0'));
    await deliver(fromTm('g1', '02', '1'));
    await deliver(fromTm('g1', '01', '2'));
    await deliver(fromTm('g2', '01', '3'));
    expect(handled.map((r) => `${r.gid}/${r.branchId}`)).toEqual(['g1/01', 'g1/02', 'g2/01']);
    expect(dropped).toEqual(['2']);
    expect(running.stats).toEqual({ handled: 3, duplicates: 1, foreign: 0 });
  });

  it('when the handler throws, then the record is not marked and its redelivery is handled', async () => {
    const { consumer, deliver } = fakeConsumer();
    let calls = 0;
    const running = await runDedupConsumer({
      consumer,
      topics: ['orders'],
      handle: async () => {
        if (++calls === 1) throw new Error('database down');
      },
    });
    await expect(deliver(fromTm('g1', '01'))).rejects.toThrow('database down');
    await deliver(fromTm('g1', '01'));
    expect(calls).toBe(2);
    expect(running.stats).toMatchObject({ handled: 1, duplicates: 0 });
  });

  it('when a record is not from dtm-ts, then it is skipped and counted, or given to onForeign', async () => {
    const { consumer, deliver } = fakeConsumer();
    const foreign: string[] = [];
    const running = await runDedupConsumer({
      consumer,
      topics: ['orders'],
      handle: () => Promise.reject(new Error('not for me')),
      onForeign: async (p) => {
        foreign.push(p.message.value!.toString());
      },
    });
    await deliver(message({}, 'plain'));
    expect(foreign).toEqual(['plain']);
    expect(running.stats.foreign).toBe(1);
  });
});
