import { describe, expect, it } from 'vitest';
import { fold, type Policy, type TxEvent } from '@dtm-ts/domain';
import { preparedSaga } from '@dtm-ts/testing';
import type { EventLog, FeedEntry, ReadModel, TransactionSummary } from '@dtm-ts/ports';
import { FoldCache, projectEntries } from './projector';

const policy: Policy = { retryIntervalS: 10, timeoutToFailS: 35, backoffCapS: 3600 };
const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString();
const prepared = preparedSaga({ at: at(0) });
const stream: TxEvent[] = [
  prepared,
  { type: 'TransactionSubmitted', data: { at: at(0) } },
  { type: 'BranchSucceeded', data: { branchId: '01', op: 'action', at: at(5) } },
  { type: 'TransactionSucceeded', data: { at: at(5) } },
];
const entry = (first: number, count: number): FeedEntry => ({
  gid: 'g1',
  firstRevision: first,
  events: stream.slice(first, first + count),
  checkpoint: String(first),
});

const fakes = () => {
  const reads: string[] = [];
  const puts: { summary: TransactionSummary; version: number; wakeAt: number | null }[] = [];
  const log: EventLog = {
    read: async (id) => {
      reads.push(id);
      return { events: stream, version: stream.length - 1 };
    },
    append: async () => 0,
  };
  const readModel = {
    put: async (summary: TransactionSummary, version: number, wakeAt: number | null) => {
      puts.push({ summary, version, wakeAt });
    },
  } as unknown as ReadModel;
  return { reads, puts, deps: { log, readModel, requestTimeoutMs: 3000, policy, cache: new FoldCache() } };
};

describe('projector', () => {
  it('when entries follow each other from the first append, then it projects them without reading the log', async () => {
    const f = fakes();
    await projectEntries(f.deps, [entry(0, 2)]);
    await projectEntries(f.deps, [entry(2, 2)]);
    expect(f.reads).toEqual([]);
    expect(f.puts.map((p) => [p.version, p.summary.status, p.wakeAt === null])).toEqual([
      [1, 'submitted', false],
      [3, 'succeed', true],
    ]);
  });

  it('when an entry does not follow what it holds (another projector took some), then it folds the whole stream', async () => {
    const f = fakes();
    await projectEntries(f.deps, [entry(0, 2)]);
    await projectEntries(f.deps, [entry(3, 1)]);
    expect(f.reads).toEqual(['g1']);
    expect(f.puts.at(-1)).toMatchObject({ version: 3, summary: { status: 'succeed' } });
  });

  it('when entries arrive out of order in one batch, then it applies them in revision order', async () => {
    const f = fakes();
    await projectEntries(f.deps, [entry(2, 2), entry(0, 2)]);
    expect(f.reads).toEqual([]);
    expect(f.puts).toHaveLength(1);
    expect(f.puts[0]).toMatchObject({ version: 3, summary: { status: 'succeed' } });
  });

  it('when a stream is not new and nothing is cached, then it reads the log', async () => {
    const f = fakes();
    await projectEntries(f.deps, [entry(2, 2)]);
    expect(f.reads).toEqual(['g1']);
  });
});

describe('fold cache', () => {
  it('when many transactions with large payloads pass through, then the cache stays within its byte budget', () => {
    const cache = new FoldCache(1024 * 1024);
    const big = fold([prepared]);
    if (big.status === 'none') throw new Error('fixture');
    for (let i = 0; i < 500; i++) {
      const state = { ...big, gid: `g${i}`, definition: { ...big.definition, payloads: ['x'.repeat(10_000)] } };
      cache.set(`g${i}`, { state, version: 0 });
      expect(cache.bytes).toBeLessThanOrEqual(1024 * 1024);
    }
    // The newest are kept, the oldest went.
    expect(cache.get('g499')).toBeDefined();
    expect(cache.get('g0')).toBeUndefined();
  });
});
