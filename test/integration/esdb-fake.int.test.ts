import {
  BACKWARDS,
  END,
  EventStoreDBClient,
  FORWARDS,
  START,
  jsonEvent,
  streamNameFilter,
  type Position,
  type ResolvedEvent,
} from '@eventstore/db-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEsdbFake, type EsdbFake } from '@dtm-ts/testing';

/**
 * The gRPC fake, seen through the real client: the behaviour of the server that the adapter relies on, so
 * that a difference from a real server shows here first (run the same calls against one to compare).
 */
let fake: EsdbFake;
let client: EventStoreDBClient;

beforeAll(async () => {
  fake = await startEsdbFake();
  client = EventStoreDBClient.connectionString(fake.url);
});
afterAll(async () => {
  await client?.dispose();
  await fake?.stop();
});

const event = (n: number) => jsonEvent({ type: 'Numbered', data: { n } });
const collect = async (read: AsyncIterable<ResolvedEvent>): Promise<ResolvedEvent[]> => {
  const out: ResolvedEvent[] = [];
  for await (const e of read) out.push(e);
  return out;
};
const numbers = (events: ResolvedEvent[]) => events.map((e) => (e.event?.data as { n: number }).n);

describe('EventStoreDB gRPC fake', () => {
  it('when a stream is read forwards or backwards from a revision, then it returns that revision onwards', async () => {
    await client.appendToStream('read-s', [0, 1, 2, 3, 4].map(event), { expectedRevision: 'no_stream' });
    expect(numbers(await collect(client.readStream('read-s', { fromRevision: 2n })))).toEqual([2, 3, 4]);
    expect(numbers(await collect(client.readStream('read-s', { direction: BACKWARDS, fromRevision: END })))).toEqual([
      4, 3, 2, 1, 0,
    ]);
    expect(
      numbers(await collect(client.readStream('read-s', { direction: BACKWARDS, fromRevision: 1n, maxCount: 5 }))),
    ).toEqual([1, 0]);
    expect(numbers(await collect(client.readStream('read-s', { maxCount: 2 })))).toEqual([0, 1]);
  });

  it('when $all is read from a position, then forwards includes it and a subscription starts after it', async () => {
    await client.appendToStream('pos-s', [10, 11, 12].map(event), { expectedRevision: 'no_stream' });
    const ours = (await collect(client.readAll({ fromPosition: START }))).filter((e) => e.event?.streamId === 'pos-s');
    const middle = ours[1]!.event!.position!;
    // Events of one append share the commit position and differ by prepare position.
    expect(ours.map((e) => e.event?.position?.commit)).toEqual(Array(3).fill(middle.commit));
    expect(numbers(await collect(client.readAll({ fromPosition: middle, maxCount: 2 })))).toEqual([11, 12]);
    expect(numbers(await collect(client.readAll({ fromPosition: middle, direction: BACKWARDS, maxCount: 1 })))).toEqual(
      [10],
    );

    const sub = client.subscribeToAll({ fromPosition: middle, filter: streamNameFilter({ prefixes: ['pos-'] }) });
    const seen: number[] = [];
    for await (const e of sub) {
      seen.push((e.event?.data as { n: number }).n);
      if (seen.length === 1) break;
    }
    expect(seen).toEqual([12]);
  });

  it('when a stream subscription catches up, then it says so and goes on live', async () => {
    await client.appendToStream('sub-s', [0, 1].map(event), { expectedRevision: 'no_stream' });
    const sub = client.subscribeToStream('sub-s', { fromRevision: 0n });
    const seen: (number | 'caught-up')[] = [];
    sub.on('caughtUp', () => {
      seen.push('caught-up');
      void client.appendToStream('sub-s', [event(2)], { expectedRevision: 1n });
    });
    for await (const e of sub) {
      seen.push((e.event?.data as { n: number }).n);
      if (seen.includes(2)) break;
    }
    // From revision 0: after it.
    expect(seen).toEqual([1, 'caught-up', 2]);
  });

  it('when a filtered $all subscription scans other streams, then it reports checkpoints as it goes', async () => {
    for (let i = 0; i < 10; i++) await client.appendToStream(`noise-${i}`, [event(i)]);
    await client.appendToStream('wanted-1', [event(99)]);
    const checkpoints: Position[] = [];
    const sub = client.subscribeToAll({
      fromPosition: START,
      filter: streamNameFilter({
        prefixes: ['wanted-'],
        maxSearchWindow: 2,
        checkpointReached: (_s, p) => void checkpoints.push(p),
      }),
    });
    const seen: string[] = [];
    for await (const e of sub) {
      seen.push(e.event?.streamId ?? '');
      break;
    }
    expect(seen).toEqual(['wanted-1']);
    // One checkpoint per 2 events scanned before it.
    expect(checkpoints.length).toBeGreaterThanOrEqual(5);
    const sorted = [...checkpoints].sort((a, b) => (a.commit < b.commit ? -1 : a.commit > b.commit ? 1 : 0));
    expect(checkpoints).toEqual(sorted);
  });

  it('when a subscription asks for something the fake cannot do, then it gets an error, not a hang', async () => {
    const sub = client.subscribeToAll({ fromPosition: START, filter: streamNameFilter({ regex: '(' }) });
    await expect(collect(sub)).rejects.toThrow();
  });

  it('when the fake stops, then open subscriptions end with an error and new calls fail', async () => {
    const other = await startEsdbFake();
    const c = EventStoreDBClient.connectionString(other.url);
    try {
      await c.appendToStream('s', [event(1)]);
      const sub = c.subscribeToAll({ fromPosition: END });
      const confirmed = new Promise<void>((r) => sub.once('confirmation', () => r()));
      const ended = collect(sub).then(
        () => 'ended',
        () => 'error',
      );
      await confirmed; // the subscription is open on the fake
      await other.stop();
      expect(['ended', 'error']).toContain(await ended);
      await expect(collect(c.readStream('s', { direction: FORWARDS }))).rejects.toThrow();
    } finally {
      await c.dispose();
    }
  });
});
