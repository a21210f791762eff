import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TxEvent } from '@dtm-ts/domain';
import { NO_STREAM, VersionConflict, type EventFeed, type EventLog, type FeedEntry } from '@dtm-ts/ports';

/** A subscription to the feed, as the projector uses one (RedisFeedSubscriber, EsdbFeedSubscriber). */
export interface FeedSubscriberUnderTest {
  start(handler: (entries: FeedEntry[]) => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

/** What a conformance run needs: a log to test, and how to let go of it. */
export interface EventLogUnderTest {
  readonly log: EventLog & EventFeed;
  /**
   * A new subscriber to the log's feed that resumes where the last one of the same `name` stopped (a
   * checkpoint, a consumer group). Without it, the subscription cases are skipped.
   */
  readonly subscriber?: (name: string) => FeedSubscriberUnderTest;
  close(): Promise<void>;
}

const at = (): string => new Date().toISOString();
const submitted = (): TxEvent => ({ type: 'TransactionSubmitted', data: { at: at() } });
/** An event that says who wrote it, so tests can tell appends apart. */
const aborting = (reason: string): TxEvent => ({ type: 'TransactionAborting', data: { reason, at: at() } });

/** Reads the whole feed from `from`, page by page, returning the entries and the last checkpoint. */
const readAll = async (
  feed: EventFeed,
  from: string,
  pageSize: number,
): Promise<{ entries: FeedEntry[]; checkpoint: string; pages: number }> => {
  const entries: FeedEntry[] = [];
  let checkpoint = from;
  let pages = 0;
  for (;;) {
    const page = await feed.readPage(checkpoint, pageSize);
    if (page.length === 0) return { entries, checkpoint, pages };
    pages++;
    expect(page.length).toBeLessThanOrEqual(pageSize);
    entries.push(...page);
    checkpoint = page.at(-1)?.checkpoint ?? checkpoint;
  }
};

const appendKey = (e: FeedEntry): string => `${e.gid}@${e.firstRevision}`;

/**
 * The behaviour every EventLog + EventFeed must show, whatever stores it. `make` is called once for the
 * suite; tests use fresh gids, so they tolerate other streams in the same log but not other writers running
 * concurrently.
 */
export const describeEventLogConformance = (name: string, make: () => Promise<EventLogUnderTest>): void => {
  describe(`${name} (event log conformance)`, () => {
    let sut: EventLogUnderTest;
    let log: EventLog & EventFeed;
    const gid = (label: string): string => `${label}-${randomUUID()}`;

    beforeAll(async () => {
      sut = await make();
      log = sut.log;
    });
    afterAll(async () => {
      await sut?.close();
    });

    it('when nobody wrote a stream, then reading it gives no events and NO_STREAM', async () => {
      expect(await log.read(gid('empty'))).toEqual({ events: [], version: NO_STREAM });
    });

    it('when events are appended to a new stream, then reading gives them back with the last revision', async () => {
      const g = gid('round-trip');
      const events: TxEvent[] = [submitted(), aborting('because'), { type: 'RetryScheduleReset', data: { at: at() } }];
      expect(await log.append(g, events, NO_STREAM)).toBe(2);
      expect(await log.read(g)).toEqual({ events, version: 2 });
      expect(await log.append(g, [submitted()], 2)).toBe(3);
      expect((await log.read(g)).version).toBe(3);
    });

    it('when a stream exists, then creating it again conflicts and writes nothing', async () => {
      const g = gid('create-twice');
      await log.append(g, [aborting('first')], NO_STREAM);
      const err = await log.append(g, [aborting('second')], NO_STREAM).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VersionConflict);
      expect(err).toMatchObject({ gid: g, expected: NO_STREAM, actual: 0 });
      const { events, version } = await log.read(g);
      expect(version).toBe(0);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ data: { reason: 'first' } });
    });

    it('when the expected revision is behind or ahead, then the append conflicts with the actual revision and writes nothing', async () => {
      const g = gid('wrong-revision');
      await log.append(g, [submitted(), submitted()], NO_STREAM);
      for (const expected of [0, 2, 7]) {
        await expect(log.append(g, [aborting(`stale ${expected}`)], expected)).rejects.toMatchObject({
          name: 'VersionConflict',
          gid: g,
          expected,
          actual: 1,
        });
      }
      const none = gid('no-stream');
      await expect(log.append(none, [submitted()], 0)).rejects.toMatchObject({ expected: 0, actual: NO_STREAM });
      expect((await log.read(g)).version).toBe(1);
      expect(await log.read(none)).toEqual({ events: [], version: NO_STREAM });
      const { entries } = await readAll(log, '', 500);
      expect(entries.filter((e) => e.gid === g).map((e) => e.events.length)).toEqual([2]);
      expect(entries.some((e) => e.gid === none)).toBe(false);
    });

    it('when 20 writers race at the same expected revision, then exactly one wins each round', async () => {
      const g = gid('race');
      await log.append(g, [submitted()], NO_STREAM);
      const winners: string[] = [];
      for (let round = 0; round < 5; round++) {
        const expected = round;
        const results = await Promise.allSettled(
          Array.from({ length: 20 }, (_, writer) => log.append(g, [aborting(`r${round}w${writer}`)], expected)),
        );
        const won = results.flatMap((r, writer) => (r.status === 'fulfilled' ? [{ writer, revision: r.value }] : []));
        const lost = results.filter((r) => r.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(won[0]?.revision).toBe(expected + 1);
        expect(lost).toHaveLength(19);
        for (const r of lost) expect(r.reason).toBeInstanceOf(VersionConflict);
        winners.push(`r${round}w${won[0]?.writer}`);
      }
      const { events, version } = await log.read(g);
      expect(version).toBe(5);
      expect(events.slice(1).map((e) => (e.type === 'TransactionAborting' ? e.data.reason : e.type))).toEqual(winners);
    });

    it('when batches are appended one after another, then the stream keeps their order', async () => {
      const g = gid('order');
      let version = NO_STREAM;
      const reasons: string[] = [];
      for (let batch = 0; batch < 10; batch++) {
        const events = Array.from({ length: (batch % 3) + 1 }, (_, i) => aborting(`${batch}.${i}`));
        reasons.push(...events.map((e) => (e.type === 'TransactionAborting' ? e.data.reason : '')));
        const last = await log.append(g, events, version);
        expect(last).toBe(version + events.length);
        version = last;
      }
      const read = await log.read(g);
      expect(read.version).toBe(reasons.length - 1);
      expect(read.events.map((e) => (e.type === 'TransactionAborting' ? e.data.reason : ''))).toEqual(reasons);
    });

    it('when the feed is paged from the start, then every append shows once, in stream order, with its events', async () => {
      const gids = Array.from({ length: 12 }, (_, i) => gid(`feed${i}`));
      const expected = new Map<string, TxEvent[]>();
      // Interleave appends of different streams, some with several events.
      const versions = new Map(gids.map((g) => [g, NO_STREAM]));
      for (let round = 0; round < 4; round++) {
        for (const [i, g] of gids.entries()) {
          const events = Array.from({ length: 1 + ((round + i) % 3) }, () => aborting(`${g} ${round}`));
          const v = versions.get(g) ?? NO_STREAM;
          expected.set(`${g}@${v + 1}`, events);
          versions.set(g, await log.append(g, events, v));
        }
      }
      const { entries, pages } = await readAll(log, '', 7);
      expect(pages).toBeGreaterThan(1);
      const ours = entries.filter((e) => versions.has(e.gid));
      expect(ours.map(appendKey).sort()).toEqual([...expected.keys()].sort());
      expect(new Set(entries.map(appendKey)).size).toBe(entries.length);
      for (const e of ours) expect(e.events).toEqual(expected.get(appendKey(e)));
      for (const g of gids) {
        const revisions = ours.filter((e) => e.gid === g).map((e) => e.firstRevision);
        expect(revisions).toEqual([...revisions].sort((a, b) => a - b));
        // Each append starts where the previous one ended: no append is missing.
        let next = 0;
        for (const e of ours.filter((x) => x.gid === g)) {
          expect(e.firstRevision).toBe(next);
          next += e.events.length;
        }
        expect(next - 1).toBe(versions.get(g));
      }
    });

    it('when reading resumes from a checkpoint, then it continues with no gap and no duplicate', async () => {
      const gids = Array.from({ length: 6 }, (_, i) => gid(`resume${i}`));
      for (const g of gids) await log.append(g, [submitted()], NO_STREAM);
      for (const g of gids) await log.append(g, [submitted(), submitted()], 0);
      const full = await readAll(log, '', 1000);
      const ours = gids.flatMap((g) => [`${g}@0`, `${g}@1`]);
      expect(
        full.entries
          .map(appendKey)
          .filter((k) => ours.includes(k))
          .sort(),
      ).toEqual(ours.sort());
      for (const cut of [1, 5, Math.floor(full.entries.length / 2), full.entries.length - 1]) {
        const from = full.entries[cut - 1]?.checkpoint ?? '';
        const rest = await readAll(log, from, 3);
        expect(rest.entries.map(appendKey)).toEqual(full.entries.slice(cut).map(appendKey));
      }
      // Caught up: nothing more, until someone appends; then exactly the new appends.
      expect(await log.readPage(full.checkpoint, 10)).toEqual([]);
      const late = gid('late');
      await log.append(late, [submitted()], NO_STREAM);
      await log.append(gids[0] ?? late, [submitted()], 2);
      const after = await readAll(log, full.checkpoint, 10);
      expect(after.entries.map(appendKey).sort()).toEqual([`${gids[0]}@3`, `${late}@0`].sort());
    });

    it('when a stream holds 2,000 events, then they read back in order, in one append and in many', async () => {
      const big = gid('big');
      const events = Array.from({ length: 2_000 }, (_, i) => aborting(`event ${i}`));
      expect(await log.append(big, events, NO_STREAM)).toBe(1_999);
      const read = await log.read(big);
      expect(read.version).toBe(1_999);
      expect(read.events).toEqual(events);
      const { entries } = await readAll(log, '', 50);
      const entry = entries.find((e) => e.gid === big);
      expect(entry?.firstRevision).toBe(0);
      expect(entry?.events).toEqual(events);

      const chunked = gid('chunked');
      let version = NO_STREAM;
      for (let i = 0; i < 2_000; i += 100) version = await log.append(chunked, events.slice(i, i + 100), version);
      expect(version).toBe(1_999);
      expect((await log.read(chunked)).events).toEqual(events);
    });

    /** A subscriber that records what it was handed, for the appends of `gids` only. */
    const recording = (name: string, gids: ReadonlySet<string>, fail?: (e: FeedEntry) => boolean) => {
      const seen: FeedEntry[] = [];
      const subscriber = sut.subscriber!(name);
      return {
        seen,
        keys: () => seen.map(appendKey),
        start: () =>
          subscriber.start(async (entries) => {
            const ours = entries.filter((e) => gids.has(e.gid));
            for (const e of ours) if (fail?.(e)) throw new Error(`handler refuses ${appendKey(e)}`);
            seen.push(...ours);
          }),
        stop: () => subscriber.stop(),
      };
    };
    /** Appends to each gid `rounds` times, 1 to 3 events each; returns the appends' keys. */
    const appendRounds = async (gids: string[], versions: Map<string, number>, rounds: number) => {
      const keys: string[] = [];
      for (let r = 0; r < rounds; r++) {
        for (const [i, g] of gids.entries()) {
          const v = versions.get(g) ?? NO_STREAM;
          const events = Array.from({ length: 1 + ((r + i) % 3) }, () => aborting(`${g} ${v}`));
          keys.push(`${g}@${v + 1}`);
          versions.set(g, await log.append(g, events, v));
        }
      }
      return keys;
    };
    /** Per gid, the entries seen start at revision 0 and each begins where the previous ended. */
    const expectContiguous = (seen: FeedEntry[], versions: Map<string, number>) => {
      for (const [g, last] of versions) {
        let next = 0;
        for (const e of seen.filter((x) => x.gid === g)) {
          expect(e.firstRevision, `${g}: entry after revision ${next - 1}`).toBe(next);
          next += e.events.length;
        }
        expect(next - 1).toBe(last);
      }
    };

    it('when a subscriber starts, then it delivers what is there, then each new append once, in stream order', async (ctx) => {
      if (!sut.subscriber) ctx.skip();
      const gids = Array.from({ length: 5 }, (_, i) => gid(`sub${i}`));
      const versions = new Map<string, number>();
      const before = await appendRounds(gids, versions, 2);
      const sub = recording(`catch-up-${randomUUID()}`, new Set(gids));
      await sub.start();
      try {
        await expect.poll(() => sub.keys().length, { timeout: 15_000 }).toBe(before.length);
        // Live: appends made after it caught up arrive too, without restarting anything.
        const live = await appendRounds(gids, versions, 3);
        await expect.poll(() => sub.keys().length, { timeout: 15_000 }).toBe(before.length + live.length);
        expect(sub.keys().sort()).toEqual([...before, ...live].sort());
        expectContiguous(sub.seen, versions);
        for (const e of sub.seen) expect(e.events.length).toBeGreaterThan(0);
      } finally {
        await sub.stop();
      }
    });

    it('when a subscriber stops and another resumes under its name, then it goes on with no gap and no repeat', async (ctx) => {
      if (!sut.subscriber) ctx.skip();
      const gids = Array.from({ length: 4 }, (_, i) => gid(`resume-sub${i}`));
      const versions = new Map<string, number>();
      const name = `resume-${randomUUID()}`;
      const first = recording(name, new Set(gids));
      await first.start();
      const early = await appendRounds(gids, versions, 2);
      await expect.poll(() => first.keys().length, { timeout: 15_000 }).toBe(early.length);
      await first.stop();

      // Written while nobody listens: the next subscriber of the same name must catch up on exactly these.
      const missed = await appendRounds(gids, versions, 2);
      const second = recording(name, new Set(gids));
      await second.start();
      try {
        await expect.poll(() => second.keys().length, { timeout: 15_000 }).toBe(missed.length);
        const later = await appendRounds(gids, versions, 1);
        await expect.poll(() => second.keys().length, { timeout: 15_000 }).toBe(missed.length + later.length);
        expect(second.keys().sort()).toEqual([...missed, ...later].sort());
        expect(first.keys().sort()).toEqual(early.sort());
        expectContiguous([...first.seen, ...second.seen], versions);
      } finally {
        await second.stop();
      }
    });

    it('when the handler fails, then the subscriber delivers the same appends again until it succeeds', async (ctx) => {
      if (!sut.subscriber) ctx.skip();
      const gids = [gid('flaky-a'), gid('flaky-b')];
      const versions = new Map<string, number>();
      let refusals = 2;
      const sub = recording(`flaky-${randomUUID()}`, new Set(gids), (e) => e.gid === gids[1] && refusals-- > 0);
      await sub.start();
      try {
        const keys = await appendRounds(gids, versions, 2);
        await expect.poll(() => new Set(sub.keys()).size, { timeout: 30_000 }).toBe(keys.length);
        expect(refusals).toBeLessThan(0);
        expect([...new Set(sub.keys())].sort()).toEqual(keys.sort());
        // At least once: an append may come twice, but the last delivery of each gid ends at its last revision.
        for (const g of gids) {
          const last = sub.seen.filter((e) => e.gid === g).at(-1);
          expect(last && last.firstRevision + last.events.length - 1).toBe(versions.get(g));
        }
      } finally {
        await sub.stop();
      }
    });
  });
};
