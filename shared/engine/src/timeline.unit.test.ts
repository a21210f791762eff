import { describe, expect, it } from 'vitest';
import type { TxEvent } from '@dtm-ts/domain';
import { preparedSaga } from '@dtm-ts/testing';
import { buildTimeline, formatTimeline, timelineWithin } from './timeline';

const at = (s: number): string => new Date(Date.UTC(2026, 0, 1) + s * 1000).toISOString();

const prepared = preparedSaga({ steps: 2, at: at(0) });

/** Step 1 succeeds, step 2 errs once then refuses, step 1 is compensated after one error. */
const stream: TxEvent[] = [
  prepared,
  { type: 'TransactionSubmitted', data: { at: at(0) } },
  { type: 'BranchSucceeded', data: { branchId: '01', op: 'action', at: at(1) } },
  {
    type: 'BranchRetryScheduled',
    data: { branchId: '02', op: 'action', outcome: 'error', detail: 'HTTP 503', at: at(2), retryAt: at(12) },
  },
  { type: 'BranchFailed', data: { branchId: '02', op: 'action', reason: 'no funds', at: at(12) } },
  { type: 'TransactionAborting', data: { reason: 'no funds', at: at(12) } },
  {
    type: 'BranchRetryScheduled',
    data: { branchId: '01', op: 'compensate', outcome: 'error', detail: 'timeout', at: at(13), retryAt: at(23) },
  },
  { type: 'BranchSucceeded', data: { branchId: '01', op: 'compensate', at: at(23) } },
  { type: 'TransactionFailed', data: { reason: 'no funds', forced: false, at: at(23) } },
];

describe('timeline', () => {
  it('when a saga is rolled back, then every event shows its status, call, URL and outcome', () => {
    const t = buildTimeline('g1', stream);
    expect(t).toMatchObject({ gid: 'g1', transType: 'saga', status: 'failed', version: 8 });
    expect(t.events.map((e) => [e.revision, e.type, e.status, e.statusChanged])).toEqual([
      [0, 'TransactionPrepared', 'prepared', true],
      [1, 'TransactionSubmitted', 'submitted', true],
      [2, 'BranchSucceeded', 'submitted', false],
      [3, 'BranchRetryScheduled', 'submitted', false],
      [4, 'BranchFailed', 'submitted', false],
      [5, 'TransactionAborting', 'aborting', true],
      [6, 'BranchRetryScheduled', 'aborting', false],
      [7, 'BranchSucceeded', 'aborting', false],
      [8, 'TransactionFailed', 'failed', true],
    ]);
    expect(t.events[3]).toMatchObject({
      branchId: '02',
      op: 'action',
      url: 'http://rm/a1',
      outcome: 'error',
      reason: 'HTTP 503',
      retryAt: at(12),
    });
    expect(t.events[4]).toMatchObject({ url: 'http://rm/a1', outcome: 'failed', reason: 'no funds' });
  });

  it('when compensations were answered, then they are listed in recorded order, errors included', () => {
    const t = buildTimeline('g1', stream);
    expect(t.compensations).toEqual([
      { branchId: '01', op: 'compensate', at: at(13), outcome: 'error', url: 'http://rm/c0' },
      { branchId: '01', op: 'compensate', at: at(23), outcome: 'succeed', url: 'http://rm/c0' },
    ]);
  });

  it('when the stream holds an event type this build does not know, then it is listed, marked, and the rest still folds', () => {
    const newer = { type: 'BranchWeighed', data: { branchId: '01', at: at(1) } } as unknown as TxEvent;
    const t = buildTimeline('g1', [...stream.slice(0, 2), newer, ...stream.slice(2)]);
    expect(t.status).toBe('failed');
    expect(t.events[2]).toMatchObject({ revision: 2, type: 'BranchWeighed', at: at(1), status: 'submitted' });
    expect(t.events[2]!.text).toMatch(/^BranchWeighed \(not applied by this build: unknown event/);
    expect(t.events).toHaveLength(stream.length + 1);
  });

  it('when nothing was recorded, then the timeline is empty with status none', () => {
    expect(buildTimeline('nope', [])).toEqual({
      gid: 'nope',
      transType: null,
      status: 'none',
      version: -1,
      events: [],
      compensations: [],
    });
  });

  it('when a window is given, then only events and compensations inside it stay (ends inclusive)', () => {
    const t = timelineWithin(buildTimeline('g1', stream), Date.parse(at(12)), Date.parse(at(13)));
    expect(t.events.map((e) => e.revision)).toEqual([4, 5, 6]);
    expect(t.compensations.map((c) => c.at)).toEqual([at(13)]);
    expect(timelineWithin(buildTimeline('g1', stream), Date.parse(at(23)) + 1).events).toEqual([]);
  });

  it('when formatted, then one line per event with the status arrow on changes, then the compensations', () => {
    const lines = formatTimeline(buildTimeline('g1', stream)).trimEnd().split('\n');
    expect(lines[0]).toBe('gid g1  saga  failed  (revision 8)');
    expect(lines).toHaveLength(1 + 9 + 1 + 2);
    expect(lines[2]).toContain('→ submitted');
    expect(lines[3]).not.toContain('→');
    expect(lines[4]).toContain('02/action http://rm/a1 answered error: HTTP 503; retry at');
    expect(lines[10]).toBe('  compensations, in order:');
    expect(lines[12]).toBe(`    2. ${at(23)}  01/compensate  succeed  http://rm/c0`);
  });
});
