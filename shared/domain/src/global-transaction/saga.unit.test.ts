import { describe, expect, it } from 'vitest';
import type { TxEvent } from './events';
import { aborting, at, ok, policy, refused, retry, saga, submitted, T0 } from './fixtures.unit-support';
import { plan, type Plan } from './plan';
import { fold } from './state';

const planAt = (events: TxEvent[], t: number): Plan => plan(fold(events), T0 + t, policy);
const calls = (p: Plan): string[] =>
  p.kind === 'call' ? p.calls.map((c) => `${c.branchId}/${c.op}`) : [`<${p.kind}>`];
const appended = (p: Plan): string[] => (p.kind === 'append' ? p.events.map((e) => e.type) : [`<${p.kind}>`]);

describe('sequential saga, forward', () => {
  const s3 = saga(3);
  it('when submitted, then only the first action is due', () =>
    expect(calls(planAt(submitted(s3), 0))).toEqual(['01/action']));
  it('when the first action succeeded, then the second is due', () =>
    expect(calls(planAt([...submitted(s3), ok(0, 'action', 1)], 1))).toEqual(['02/action']));
  it('when every action succeeded, then the saga succeeds', () =>
    expect(appended(planAt([...submitted(s3), ok(0, 'action', 1), ok(1, 'action', 2), ok(2, 'action', 3)], 3))).toEqual(
      ['TransactionSucceeded'],
    ));
  it('when a saga has no steps, then it succeeds at once', () =>
    expect(appended(planAt(submitted(saga(0)), 0))).toEqual(['TransactionSucceeded']));
  it('when an action is waiting for a retry, then the plan waits until its time', () => {
    const p = planAt([...submitted(s3), retry(0, 'action', 'ongoing', 1, 10_001)], 5);
    expect(p).toEqual({ kind: 'wait', until: T0 + 10_001 });
    expect(calls(planAt([...submitted(s3), retry(0, 'action', 'ongoing', 1, 10_001)], 10_001))).toEqual(['01/action']);
  });
  it('when an action failed, then the saga aborts with its reason', () => {
    const p = planAt([...submitted(s3), ok(0, 'action', 1), refused(1, 2, 'url:x return failed: no FAILURE')], 2);
    expect(p).toEqual({
      kind: 'append',
      events: [{ type: 'TransactionAborting', data: { reason: 'url:x return failed: no FAILURE', at: at(2) } }],
    });
  });
  it('when a prepared-only saga is planned, then there is nothing to do', () =>
    expect(plan(fold(submitted(s3).slice(0, 1)), T0, policy)).toEqual({ kind: 'done' }));
  it('when the saga is finished, then there is nothing to do', () => {
    expect(planAt([...submitted(s3), { type: 'TransactionSucceeded', data: { at: at(1) } }], 2)).toEqual({
      kind: 'done',
    });
    expect(plan(fold([]), T0, policy)).toEqual({ kind: 'done' });
  });
});

describe('timeout_to_fail and retry_limit', () => {
  it('when timeout_to_fail is not set, then a saga waits forever (as DTM)', () => {
    const p = planAt([...submitted(saga(1)), retry(0, 'action', 'error', 1, 3_600_000)], 3_000_000);
    expect(p).toEqual({ kind: 'wait', until: T0 + 3_600_000 });
  });
  it('when the deadline is before the next retry, then the plan wakes at the deadline', () => {
    const s = saga(1, { timeoutToFail: 5 });
    expect(planAt([...submitted(s), retry(0, 'action', 'error', 1, 60_000)], 2)).toEqual({
      kind: 'wait',
      until: T0 + 5_000,
    });
  });
  it("when the deadline passed, then the saga aborts with DTM's timeout reason", () => {
    const s = saga(1, { timeoutToFail: 5 });
    const p = planAt([...submitted(s), retry(0, 'action', 'ongoing', 1, 60_000)], 5_000);
    expect(p).toEqual({
      kind: 'append',
      events: [{ type: 'TransactionAborting', data: { reason: 'Timeout after 5 seconds', at: at(5_000) } }],
    });
  });
  it('when retries exceed retry_limit, then the saga aborts', () => {
    const s = saga(1, { retryLimit: 2 });
    const tries = [retry(0, 'action', 'error', 1, 2), retry(0, 'action', 'error', 2, 3)];
    expect(calls(planAt([...submitted(s), ...tries], 3))).toEqual(['01/action']);
    const p = planAt([...submitted(s), ...tries, retry(0, 'action', 'error', 3, 4)], 4);
    expect(appended(p)).toEqual(['TransactionAborting']);
    expect(p.kind === 'append' && p.events[0]?.type === 'TransactionAborting' && p.events[0].data.reason).toBe(
      'RetryCount is greater than RetryLimit, RetryLimit: 2',
    );
  });
  it('when compensations fail, then retry_limit does not stop them', () => {
    const s = saga(1, { retryLimit: 1 });
    const h = [
      ...submitted(s),
      ok(0, 'action', 1),
      aborting(2, 'r'),
      retry(0, 'compensate', 'error', 3, 4),
      retry(0, 'compensate', 'error', 4, 5),
    ];
    expect(calls(planAt(h, 5))).toEqual(['01/compensate']);
  });
});

describe('sequential saga, backward', () => {
  const s3 = saga(3);
  const failedAt2 = [...submitted(s3), ok(0, 'action', 1), refused(1, 2), aborting(2, 'r')];
  it('when aborting after the second action failed, then the failed step is compensated first (as DTM)', () =>
    expect(calls(planAt(failedAt2, 3))).toEqual(['02/compensate']));
  it('when the later compensation is done, then the earlier one is due; the never-run step is skipped', () =>
    expect(calls(planAt([...failedAt2, ok(1, 'compensate', 3)], 4))).toEqual(['01/compensate']));
  it('when every owed compensation is done, then the saga failed', () =>
    expect(appended(planAt([...failedAt2, ok(1, 'compensate', 3), ok(0, 'compensate', 4)], 5))).toEqual([
      'TransactionFailed',
    ]));
  it('when a step timed out mid-retry, then it is compensated too (a timed-out call may have succeeded)', () => {
    const h = [...submitted(s3), ok(0, 'action', 1), retry(1, 'action', 'error', 2, 20), aborting(3, 'Timeout')];
    expect(calls(planAt(h, 3))).toEqual(['02/compensate']);
  });
  it('when the saga aborts before any call, then the first step is still compensated (it may have been in flight)', () =>
    expect(calls(planAt([...submitted(s3), aborting(0, 'Timeout')], 1))).toEqual(['01/compensate']));
  it('when a compensation is retrying, then the plan waits for it', () =>
    expect(planAt([...failedAt2, retry(1, 'compensate', 'error', 3, 10_003)], 4)).toEqual({
      kind: 'wait',
      until: T0 + 10_003,
    }));
});

describe('concurrent saga with orders', () => {
  // 0 and 1 run at once; 2 waits for both; 3 waits for 2.
  const c4 = saga(4, {}, { concurrent: true, orders: { 2: [0, 1], 3: [2] } });
  it('when submitted, then every step without dependencies is due at once', () =>
    expect(calls(planAt(submitted(c4), 0))).toEqual(['01/action', '02/action']));
  it('when one dependency is done, then its dependant still waits for the other', () =>
    expect(calls(planAt([...submitted(c4), ok(0, 'action', 1)], 1))).toEqual(['02/action']));
  it('when all dependencies are done, then the dependant is due', () =>
    expect(calls(planAt([...submitted(c4), ok(0, 'action', 1), ok(1, 'action', 2)], 2))).toEqual(['03/action']));
  it('when concurrent without orders, then every step is due at once', () => {
    const c3 = saga(3, {}, { concurrent: true, orders: {} });
    expect(calls(planAt(submitted(c3), 0))).toEqual(['01/action', '02/action', '03/action']);
  });
  it('when step 2 fails, then its compensation runs before those of the steps it depended on, which run together', () => {
    const h = [...submitted(c4), ok(0, 'action', 1), ok(1, 'action', 2), refused(2, 3), aborting(3, 'r')];
    expect(calls(planAt(h, 4))).toEqual(['03/compensate']);
    expect(calls(planAt([...h, ok(2, 'compensate', 4)], 5))).toEqual(['01/compensate', '02/compensate']);
    expect(appended(planAt([...h, ok(2, 'compensate', 4), ok(0, 'compensate', 5), ok(1, 'compensate', 5)], 6))).toEqual(
      ['TransactionFailed'],
    );
  });
  it('when step 0 fails while step 1 could run, then step 1 is compensated too and step 2 is not', () => {
    const h = [...submitted(c4), refused(0, 1), aborting(1, 'r')];
    expect(calls(planAt(h, 2))).toEqual(['01/compensate', '02/compensate']);
  });
});
