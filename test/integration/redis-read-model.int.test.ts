import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GlobalStatus } from '@dtm-ts/domain';
import type { ListQuery, TransactionSummary } from '@dtm-ts/ports';
import { RedisKeys, RedisReadModel, indexMember, type RedisClient } from '@dtm-ts/adapters';
import { startRedisTarget, testRedisKind, type RedisTarget } from '../support/redis-target';

// One redis-server, or a 3-master cluster under the integration-cluster project (TEST_REDIS=cluster).
let target: RedisTarget;
let redis: RedisClient;

beforeAll(async () => {
  target = await startRedisTarget(testRedisKind);
  redis = target.client();
});
afterAll(async () => {
  await target?.stop();
});

const fresh = (scanLimit?: number): RedisReadModel =>
  new RedisReadModel(redis, { prefix: `rm-${randomUUID()}`, partitions: 4, scanLimit });

const summary = (
  gid: string,
  createTime: number,
  status: GlobalStatus = 'submitted',
  transType = 'saga',
): TransactionSummary => ({ gid, transType, status, createTime, record: { gid, status, trans_type: transType } });

/** Every page of a listing, following `next` until ''. */
const listAll = async (rm: RedisReadModel, q: Omit<ListQuery, 'position'>): Promise<TransactionSummary[][]> => {
  const pages: TransactionSummary[][] = [];
  let position = '';
  for (let guard = 0; guard < 1_000; guard++) {
    const page = await rm.list({ ...q, position });
    pages.push(page.items);
    if (page.next === '') return pages;
    // Newest first: every cursor is lexically before the previous one.
    expect(position === '' || page.next < position).toBe(true);
    position = page.next;
  }
  throw new Error('listing did not end');
};

/** Newest first, as `list` promises: by create time, then gid, descending. */
const newestFirst = (a: TransactionSummary, b: TransactionSummary): number =>
  indexMember(b.createTime, b.gid) < indexMember(a.createTime, a.gid) ? -1 : 1;

describe('RedisReadModel', () => {
  it('when a summary is put, then get returns it, and an unknown gid gives null', async () => {
    const rm = fresh();
    const s = summary('g-1', 1_700_000_000_000);
    await rm.put(s, 0, 1_700_000_010_000);
    expect(await rm.get('g-1')).toEqual(s);
    expect(await rm.get('nobody')).toBeNull();
  });

  it('when an older or equal version arrives after a newer one, then it is ignored, index and wake set included', async () => {
    const rm = fresh();
    const v5 = summary('g', 1_000, 'aborting');
    expect(await rm.project(v5, 5, 9_000)).toBe(true);
    expect(await rm.project(summary('g', 1_000, 'submitted'), 3, 2_000)).toBe(false);
    expect(await rm.project(summary('g', 1_000, 'failed'), 5, null)).toBe(false);
    expect(await rm.get('g')).toEqual(v5);
    expect(await rm.overdue(10_000, 10)).toEqual([{ gid: 'g', version: 5, wakeAt: 9_000 }]);
    const done = summary('g', 1_000, 'failed');
    expect(await rm.project(done, 6, null)).toBe(true);
    expect(await rm.get('g')).toEqual(done);
    expect(await rm.overdue(10_000, 10)).toEqual([]);
    // Still listed once.
    expect((await rm.list({ position: '', limit: 10 })).items).toEqual([done]);
  });

  describe('listing across partitions', () => {
    let rm: RedisReadModel;
    const keys = new RedisKeys({ prefix: 'unused', partitions: 4 });
    const statuses: GlobalStatus[] = ['prepared', 'submitted', 'aborting', 'succeed', 'failed'];
    const all: TransactionSummary[] = [];

    beforeAll(async () => {
      rm = fresh();
      for (let i = 0; i < 90; i++) {
        // Equal create times in groups of three: ties are broken by gid.
        const s = summary(`gid-${String(i).padStart(3, '0')}`, 1_700_000_000_000 + Math.floor(i / 3) * 1_000,
          statuses[i % statuses.length], i % 4 === 0 ? 'msg' : 'saga'); // prettier-ignore
        all.push(s);
        await rm.put(s, 1, null);
      }
      all.sort(newestFirst);
    });

    it('spreads the test data over every partition', () => {
      expect(new Set(all.map((s) => keys.partitionOf(s.gid))).size).toBe(4);
    });

    it('when paging without filters, then pages are newest first and together hold everything once', async () => {
      const pages = await listAll(rm, { limit: 7 });
      expect(pages.slice(0, -1).every((p) => p.length === 7)).toBe(true);
      expect(pages.flat()).toEqual(all);
      expect(pages).toHaveLength(Math.ceil(90 / 7));
    });

    it('when the last item fills the page exactly, then next is empty', async () => {
      const { items, next } = await rm.list({ position: '', limit: 90 });
      expect(items).toHaveLength(90);
      expect(next).toBe('');
    });

    it('when filtering by status and trans type, then only matches are listed, newest first, across pages', async () => {
      const pages = await listAll(rm, { limit: 4, status: 'succeed', transType: 'saga' });
      const expected = all.filter((s) => s.status === 'succeed' && s.transType === 'saga');
      expect(expected.length).toBeGreaterThan(8);
      expect(pages.flat()).toEqual(expected);
      expect(pages.at(-1)?.length).toBeGreaterThan(0);
    });

    it('when filtering by create time, then both bounds are inclusive', async () => {
      const start = 1_700_000_000_000 + 5_000;
      const end = 1_700_000_000_000 + 12_000;
      const pages = await listAll(rm, { limit: 5, createTimeStart: start, createTimeEnd: end, transType: 'saga' });
      const expected = all.filter((s) => s.createTime >= start && s.createTime <= end && s.transType === 'saga');
      expect(pages.flat()).toEqual(expected);
      expect(new Set(expected.map((s) => s.createTime))).toEqual(
        new Set(Array.from({ length: 8 }, (_, i) => start + i * 1_000)),
      );
    });

    it('when a cursor and an end time are both given, then the stricter bound wins', async () => {
      const first = await rm.list({ position: '', limit: 10 });
      const end = 1_700_000_000_000 + 3_000;
      const page = await rm.list({ position: first.next, limit: 100, createTimeEnd: end });
      expect(page.items).toEqual(all.filter((s) => s.createTime <= end));
      const later = await rm.list({ position: first.next, limit: 100, createTimeEnd: 1_800_000_000_000 });
      expect(later.items).toEqual(all.slice(10));
    });
  });

  it('when filters match little, then a call stops after the scan limit and its cursor continues the listing', async () => {
    const rm = fresh(25);
    const items: TransactionSummary[] = [];
    for (let i = 0; i < 120; i++) {
      const s = summary(`scan-${String(i).padStart(3, '0')}`, 1_000 + i, i % 50 === 0 ? 'failed' : 'succeed');
      items.push(s);
      await rm.put(s, 0, null);
    }
    const first = await rm.list({ position: '', limit: 10, status: 'failed' });
    // Newest 25 members hold no failed one (failed: 0, 50, 100 of 119..0).
    expect(first.items).toEqual([items[100]]);
    expect(first.next).not.toBe('');
    const pages = await listAll(rm, { limit: 10, status: 'failed' });
    expect(pages.length).toBeGreaterThan(1);
    expect(pages.flat()).toEqual([items[100], items[50], items[0]]);
  });

  it('when transactions are overdue, then overdue lists them earliest first across partitions, with versions, up to the limit', async () => {
    const rm = fresh();
    const wakes: { gid: string; version: number; wakeAt: number }[] = [];
    for (let i = 0; i < 30; i++) {
      const gid = `wake-${i}`;
      const wakeAt = 10_000 + ((i * 7) % 30) * 100;
      const finished = i % 5 === 0;
      await rm.put(summary(gid, 1_000, finished ? 'succeed' : 'submitted'), i + 1, finished ? null : wakeAt);
      if (!finished) wakes.push({ gid, version: i + 1, wakeAt });
    }
    wakes.sort((a, b) => a.wakeAt - b.wakeAt);
    const before = 10_000 + 20 * 100;
    const due = wakes.filter((w) => w.wakeAt <= before);
    expect(new Set(due.map((w) => new RedisKeys({ prefix: 'x' }).partitionOf(w.gid))).size).toBeGreaterThan(1);
    expect(await rm.overdue(before, 100)).toEqual(due);
    expect(await rm.overdue(before, 5)).toEqual(due.slice(0, 5));
    expect(await rm.overdue(9_999, 100)).toEqual([]);

    // A newer projection moves the wake time; a finished one removes it.
    const [firstDue, secondDue] = due;
    await rm.put(summary(firstDue?.gid ?? '', 1_000), 100, 50_000);
    await rm.put(summary(secondDue?.gid ?? '', 1_000, 'failed'), 100, null);
    expect((await rm.overdue(before, 100)).map((w) => w.gid)).toEqual(due.slice(2).map((w) => w.gid));
    expect(await rm.overdue(50_000, 100)).toContainEqual({ gid: firstDue?.gid, version: 100, wakeAt: 50_000 });
  });
});
