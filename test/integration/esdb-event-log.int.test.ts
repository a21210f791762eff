import { randomUUID } from 'node:crypto';
import { EventStoreDBClient, jsonEvent, START, type ResolvedEvent } from '@eventstore/db-client';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TxEvent } from '@dtm-ts/domain';
import { NO_STREAM, type CheckpointStore, type FeedEntry } from '@dtm-ts/ports';
import { EsdbEventLog, EsdbFeedSubscriber, esdbTopicLog, redisCheckpointStore } from '@dtm-ts/adapters';
import { startEsdbFake, startRedis, type EsdbFake, type RedisProcess } from '@dtm-ts/testing';
import { describeEventLogConformance, type EventLogUnderTest } from './event-log.conformance';

/**
 * EventStoreDB adapter through the real client (`@eventstore/db-client`): against the in-process gRPC fake
 * (both append paths the client has), and against a real server when ESDB_URL is set.
 */
let redis: RedisProcess;
const redisClients: Redis[] = [];
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  for (const c of redisClients) c.disconnect();
  await redis?.stop();
});

const redisClient = (): Redis => {
  const c = new Redis(redis.url);
  redisClients.push(c);
  return c;
};

/** A log on `url` with a fresh prefix, and subscribers that keep their checkpoints in Redis. */
const underTest = (url: string, onClose: () => Promise<void> = async () => {}): EventLogUnderTest => {
  const client = EventStoreDBClient.connectionString(url);
  const prefix = `t${randomUUID().slice(0, 8)}`;
  const checkpoints = redisClient();
  return {
    log: new EsdbEventLog(client, { prefix }),
    subscriber: (name) =>
      new EsdbFeedSubscriber(client, {
        prefix,
        checkpoints: redisCheckpointStore(checkpoints, `${prefix}:esdb-checkpoint:${name}`),
        retryDelayMs: 200,
      }),
    close: async () => {
      await client.dispose();
      await onClose();
    },
  };
};

const onFake = async (options: Parameters<typeof startEsdbFake>[0]): Promise<EventLogUnderTest> => {
  const fake = await startEsdbFake(options);
  return underTest(fake.url, () => fake.stop());
};

describeEventLogConformance('EsdbEventLog on the gRPC fake, BatchAppend', () => onFake({ batchAppend: true }));
describeEventLogConformance('EsdbEventLog on the gRPC fake, Append (a server without server features)', () =>
  onFake({ batchAppend: false }),
);
if (process.env.ESDB_URL) {
  const url = process.env.ESDB_URL;
  describeEventLogConformance(`EsdbEventLog on ${url}`, async () => underTest(url));
}

const submitted = (): TxEvent => ({ type: 'TransactionSubmitted', data: { at: new Date().toISOString() } });

/** Every event of a stream as the raw client reads it. */
const rawRead = async (client: EventStoreDBClient, stream: string): Promise<ResolvedEvent[]> => {
  const out: ResolvedEvent[] = [];
  for await (const e of client.readStream(stream)) out.push(e);
  return out;
};

describe('EsdbEventLog layout on the gRPC fake', () => {
  let fake: EsdbFake;
  let client: EventStoreDBClient;

  beforeAll(async () => {
    fake = await startEsdbFake();
    client = EventStoreDBClient.connectionString(fake.url);
    cleanups.push(async () => {
      await client.dispose();
      await fake.stop();
    });
  });

  it('when a gid is appended, then its stream is <prefix>-tx-<gid> with our type, data and append metadata', async () => {
    const log = new EsdbEventLog(client, { prefix: 'layout' });
    const first = submitted();
    const second: TxEvent = { type: 'TransactionAborting', data: { reason: 'no', at: new Date().toISOString() } };
    await log.append('order-1', [first], NO_STREAM);
    await log.append('order-1', [second, submitted()], 0);
    const raw = await rawRead(client, 'layout-tx-order-1');
    expect(raw.map((r) => [r.event?.type, r.event?.revision, r.event?.isJson])).toEqual([
      ['TransactionSubmitted', 0n, true],
      ['TransactionAborting', 1n, true],
      ['TransactionSubmitted', 2n, true],
    ]);
    expect(raw[1]?.event?.data).toEqual(second.data);
    expect(raw.map((r) => r.event?.metadata)).toEqual([
      { appendFirst: 0, appendCount: 1 },
      { appendFirst: 1, appendCount: 2 },
      { appendFirst: 1, appendCount: 2 },
    ]);
  });

  it('when a topic is written, then it lives in <prefix>-topic-<name>, and the feed names it by its topic id', async () => {
    const log = new EsdbEventLog(client, { prefix: 'topics' });
    const topics = esdbTopicLog(log);
    const at = new Date().toISOString();
    await topics.append(
      '$topic:orders',
      [{ type: 'TopicSubscribed', data: { topic: 'orders', url: 'u', remark: '', at } }],
      NO_STREAM,
    );
    expect(await rawRead(client, 'topics-topic-orders')).toHaveLength(1);
    expect((await topics.read('$topic:orders')).version).toBe(0);
    const feed = await log.readPage('', 100);
    expect(feed.map((e) => e.gid)).toEqual(['$topic:orders']);
  });

  it('when other deployments, system streams and foreign events share the database, then the feed shows only ours', async () => {
    const mine = new EsdbEventLog(client, { prefix: 'mine' });
    const theirs = new EsdbEventLog(client, { prefix: 'theirs' });
    await theirs.append('x', [submitted()], NO_STREAM);
    await mine.append('a', [submitted(), submitted()], NO_STREAM);
    await client.appendToStream('unrelated-stream', jsonEvent({ type: 'Other', data: {} }));
    // Written by someone else into one of our streams, without our metadata: one entry per event.
    await client.appendToStream('mine-tx-b', [jsonEvent({ type: 'TransactionSubmitted', data: { at: 'x' } })]);
    await mine.append('a', [submitted()], 1);
    const entries = await mine.readPage('', 100);
    expect(entries.map((e) => `${e.gid}@${e.firstRevision}+${e.events.length}`)).toEqual(['a@0+2', 'b@0+1', 'a@2+1']);
    // The system streams a server starts with are in $all, before ours.
    const all: string[] = [];
    for await (const e of client.readAll({ fromPosition: START, maxCount: 3 })) all.push(e.event?.streamId ?? '');
    expect(all.every((s) => s.startsWith('$'))).toBe(true);
  });

  it('when a checkpoint is not one of this log, then readPage rejects it', async () => {
    const log = new EsdbEventLog(client, { prefix: 'cp' });
    await expect(log.readPage('1-0,2-0', 10)).rejects.toThrow(/checkpoint/);
    await expect(log.readPage('12', 10)).rejects.toThrow(/checkpoint/);
  });

  it('when an append is larger than the server accepts, then it fails and writes nothing', async () => {
    const small = await startEsdbFake({ maxAppendSize: 10_000 });
    const c = EventStoreDBClient.connectionString(small.url);
    try {
      const log = new EsdbEventLog(c, { prefix: 'big' });
      const huge: TxEvent = { type: 'TransactionAborting', data: { reason: 'x'.repeat(20_000), at: 'now' } };
      await expect(log.append('g', [huge], NO_STREAM)).rejects.toMatchObject({
        type: 'maximum-append-size-exceeded',
        maxAppendSize: 10_000,
      });
      expect((await log.read('g')).version).toBe(NO_STREAM);
    } finally {
      await c.dispose();
      await small.stop();
    }
  });
});

describe('EsdbFeedSubscriber', () => {
  let fake: EsdbFake;
  let client: EventStoreDBClient;

  beforeAll(async () => {
    fake = await startEsdbFake();
    client = EventStoreDBClient.connectionString(fake.url);
    cleanups.push(async () => {
      await client.dispose();
      await fake.stop();
    });
  });

  const memoryStore = (): CheckpointStore & { saved: string[] } => {
    const saved: string[] = [];
    return { saved, load: async () => saved.at(-1) ?? null, save: async (c) => void saved.push(c) };
  };

  it('when it stops while its handler runs, then the handler finishes and its checkpoint is saved', async () => {
    const log = new EsdbEventLog(client, { prefix: 'stop' });
    const checkpoints = memoryStore();
    const sub = new EsdbFeedSubscriber(client, { prefix: 'stop', checkpoints });
    let release!: () => void;
    const entered = new Promise<void>((resolve) => {
      void sub.start(async () => {
        resolve();
        await new Promise<void>((r) => (release = r));
      });
    });
    await log.append('g', [submitted()], NO_STREAM);
    await entered;
    const stopping = sub.stop();
    release();
    await stopping;
    expect(checkpoints.saved).toHaveLength(1);
    const [entry] = await log.readPage('', 10);
    expect(checkpoints.saved[0]).toBe(entry?.checkpoint);
  });

  it('when the subscription cannot reach the server, then it reports the error and keeps trying', async () => {
    const down = await startEsdbFake();
    const c = EventStoreDBClient.connectionString(down.url);
    await down.stop();
    const errors: unknown[] = [];
    const sub = new EsdbFeedSubscriber(c, {
      prefix: 'down',
      checkpoints: memoryStore(),
      retryDelayMs: 50,
      onError: (err) => errors.push(err),
    });
    const seen: FeedEntry[] = [];
    await sub.start(async (entries) => void seen.push(...entries));
    try {
      await expect.poll(() => errors.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(2);
      expect(seen).toEqual([]);
    } finally {
      await sub.stop();
      await c.dispose();
    }
  });
});
