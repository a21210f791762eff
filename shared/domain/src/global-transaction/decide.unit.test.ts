import { describe, it } from 'vitest';
import { deciderSpec } from '@dtm-ts/testing/decider-spec';
import type { TxCommand } from './commands';
import { decide } from './decide';
import { TxRejected } from './errors';
import { aborting, at, ok, policy, refused, retry, saga, submitted, T0 } from './fixtures.unit-support';
import { evolve, initialState } from './state';
import { sagaBranchId } from './types';

const spec = deciderSpec({ decide, evolve, initialState });
const s2 = saga(2);
const submit = (t: number, def = s2): TxCommand => ({
  type: 'SubmitGlobalTransaction',
  data: def,
  metadata: { now: T0 + t },
});
const result = (
  step: number,
  op: 'action' | 'compensate',
  outcome: Extract<TxCommand, { type: 'RecordBranchResult' }>['data']['outcome'],
  t: number,
): TxCommand => ({
  type: 'RecordBranchResult',
  data: {
    gid: 'g1',
    branchId: sagaBranchId(step),
    op,
    url: `http://rm/${op === 'action' ? 'a' : 'c'}${step}`,
    outcome,
  },
  metadata: { now: T0 + t, policy },
});
const forceStop: TxCommand = { type: 'ForceStop', data: { gid: 'g1' }, metadata: { now: T0 + 5 } };
const reset: TxCommand = { type: 'ResetNextCronTime', data: { gid: 'g1' }, metadata: { now: T0 + 5 } };
const succeeded = { type: 'TransactionSucceeded' as const, data: { at: at(9) } };
const failed = { type: 'TransactionFailed' as const, data: { reason: 'x', forced: false, at: at(9) } };

describe('submit', () => {
  it('when a new saga is submitted, then it is prepared and submitted in one decision', () =>
    spec.given([]).when(submit(0)).then(submitted(s2, 0)));
  it('when a submitted saga is submitted again, then nothing is appended (it is just driven again)', () =>
    spec.given(submitted(s2)).when(submit(1)).then([]));
  it('when a finished saga is submitted again, then it is refused as a conflict', () => {
    spec
      .given([...submitted(s2), succeeded])
      .when(submit(1))
      .thenThrows(TxRejected, /current status 'succeed', cannot submit/);
    spec
      .given([...submitted(s2), failed])
      .when(submit(1))
      .thenThrows(TxRejected, /current status 'failed'/);
  });
  it('when an aborting saga is submitted again, then it is refused', () =>
    spec
      .given([...submitted(s2), aborting(1, 'r')])
      .when(submit(2))
      .thenThrows(TxRejected, /'aborting'/));
});

describe('branch results', () => {
  it('when a result arrives for a transaction that does not exist, then it is refused naming its gid', () =>
    spec
      .given([])
      .when(result(0, 'action', { kind: 'success' }, 1))
      .thenThrows(TxRejected, /no transaction with gid 'g1'/));
  it('when an action succeeds, then the branch succeeded is recorded', () =>
    spec
      .given(submitted(s2))
      .when(result(0, 'action', { kind: 'success' }, 3))
      .then([ok(0, 'action', 3)]));
  it("when an action answers FAILURE, then the branch failed with DTM's rollback reason", () =>
    spec
      .given(submitted(s2))
      .when(result(1, 'action', { kind: 'failure', detail: '{"dtm_result":"FAILURE"}' }, 3))
      .then([refused(1, 3, 'url:http://rm/a1 return failed: {"dtm_result":"FAILURE"} FAILURE')]));
  it('when an action answers ONGOING, then it is retried after the fixed interval', () =>
    spec
      .given(submitted(s2))
      .when(result(0, 'action', { kind: 'ongoing', detail: 'ongoing' }, 3))
      .then([retry(0, 'action', 'ongoing', 3, 10_003)]));
  it('when ONGOING repeats, then the interval stays fixed', () =>
    spec
      .given([...submitted(s2), retry(0, 'action', 'ongoing', 3, 10_003)])
      .when(result(0, 'action', { kind: 'ongoing', detail: 'ongoing' }, 10_010))
      .then([retry(0, 'action', 'ongoing', 10_010, 20_010)]));
  it('when errors repeat, then the delay doubles from the interval up to the cap', () => {
    spec
      .given(submitted(s2))
      .when(result(0, 'action', { kind: 'error', detail: 'error' }, 0))
      .then([retry(0, 'action', 'error', 0, 10_000)]);
    spec
      .given([...submitted(s2), retry(0, 'action', 'error', 0, 10_000)])
      .when(result(0, 'action', { kind: 'error', detail: 'error' }, 10_000))
      .then([retry(0, 'action', 'error', 10_000, 30_000)]);
    const threeErrors = [
      retry(0, 'action', 'error', 0, 1),
      retry(0, 'action', 'error', 1, 2),
      retry(0, 'action', 'error', 2, 3),
    ];
    spec
      .given([...submitted(s2), ...threeErrors])
      .when(result(0, 'action', { kind: 'error', detail: 'error' }, 100))
      .then([retry(0, 'action', 'error', 100, 60_100)]);
  });
  it('when the transaction has its own retry_interval, then it is the base', () => {
    const s = saga(1, { retryInterval: 2 });
    spec
      .given(submitted(s))
      .when(result(0, 'action', { kind: 'ongoing', detail: 'ongoing' }, 0))
      .then([retry(0, 'action', 'ongoing', 0, 2_000)]);
  });
  it('when timeout_to_fail is shorter than the server interval and no retry_interval is set, then it is the base (as DTM)', () => {
    const s = saga(1, { timeoutToFail: 4 });
    spec
      .given(submitted(s))
      .when(result(0, 'action', { kind: 'error', detail: 'error' }, 0))
      .then([retry(0, 'action', 'error', 0, 4_000)]);
  });
  it('when a compensation answers FAILURE, then it is retried, never final', () =>
    spec
      .given([...submitted(s2), ok(0, 'action', 1), aborting(2, 'r')])
      .when(result(0, 'compensate', { kind: 'failure', detail: 'nope' }, 3))
      .then([
        {
          ...retry(0, 'compensate', 'error', 3, 10_003),
          data: {
            ...retry(0, 'compensate', 'error', 3, 10_003).data,
            detail: 'FAILURE is retried here, compensate must succeed: nope',
          },
        } as never,
      ]));
  it('when a result arrives for a branch already settled, then nothing is appended', () =>
    spec
      .given([...submitted(s2), ok(0, 'action', 1)])
      .when(result(0, 'action', { kind: 'error', detail: 'late' }, 2))
      .then([]));
  it('when a result arrives after a force stop, then nothing is appended', () =>
    spec
      .given([
        ...submitted(s2),
        { type: 'TransactionFailed', data: { reason: 'force stopped', forced: true, at: at(1) } },
      ])
      .when(result(0, 'action', { kind: 'success' }, 2))
      .then([]));
  it('when a result names an unknown branch, then it is rejected', () =>
    spec
      .given(submitted(s2))
      .when(result(7, 'action', { kind: 'success' }, 2))
      .thenThrows(TxRejected, /no branch 08\/action/));
});

describe('force stop and reset', () => {
  it('when an unfinished saga is force stopped, then it fails without compensation', () =>
    spec
      .given(submitted(s2))
      .when(forceStop)
      .then([{ type: 'TransactionFailed', data: { reason: 'force stopped', forced: true, at: at(5) } }]));
  it('when a finished saga is force stopped, then it is a conflict', () =>
    spec
      .given([...submitted(s2), succeeded])
      .when(forceStop)
      .thenThrows(TxRejected, /cannot forceStop/));
  it('when an unknown gid is force stopped, then it is not found', () =>
    spec
      .given([])
      .when(forceStop)
      .thenThrows(TxRejected, /no transaction/));
  it('when the retry schedule is reset, then an event records it', () =>
    spec
      .given(submitted(s2))
      .when(reset)
      .then([{ type: 'RetryScheduleReset', data: { at: at(5) } }]));
  it('when a finished saga is reset, then nothing happens', () =>
    spec
      .given([...submitted(s2), succeeded])
      .when(reset)
      .then([]));
});
