import { describe, expect, it } from 'vitest';
import { deciderSpec } from '@dtm-ts/testing/decider-spec';
import type { BranchOutcome, TxCommand } from './commands';
import { decide } from './decide';
import { TxRejected } from './errors';
import type { TxEvent } from './events';
import { at, policy, T0 } from './fixtures.unit-support';
import { plan, type Plan } from './plan';
import { evolve, fold, initialState, type ActiveTransaction } from './state';
import { DEFAULT_OPTIONS, type BranchDef, type TransDefinition } from './types';

const spec = deciderSpec({ decide, evolve, initialState });
const wf = (extra: Partial<TransDefinition> = {}): TransDefinition => ({
  gid: 'g1',
  transType: 'workflow',
  protocol: 'http',
  steps: [],
  payloads: [],
  customData: '{"name":"wf1","data":"eyJhIjoxfQ=="}',
  queryPrepared: 'http://ap/resume',
  options: DEFAULT_OPTIONS,
  ordering: { concurrent: false, orders: {} },
  delayS: 0,
  workflow: { name: 'wf1', input: '{"a":1}' },
  ...extra,
});
const prepared = (d: TransDefinition = wf()): TxEvent => ({
  type: 'TransactionPrepared',
  data: { definition: d, branches: [], at: at(0) },
});
const row = (branchId: string, op: string, status: 'succeed' | 'failed' | 'prepared', data = 'd'): BranchDef => ({
  branchId,
  op,
  url: '',
  data,
  status,
});
const registered = (rows: BranchDef[], t = 1): TxEvent => ({
  type: 'BranchesRegistered',
  data: { branches: rows, at: at(t) },
});
const cmd = (c: Omit<TxCommand, 'metadata'>, t = 5): TxCommand =>
  ({ ...c, metadata: { now: T0 + t, policy } }) as TxCommand;
const submit = (reqExtra: Record<string, string>, t = 5): TxCommand =>
  cmd({ type: 'SubmitGlobalTransaction', data: { definition: wf({ reqExtra }), branches: [] } }, t);
const planAt = (events: TxEvent[], t: number): Plan => plan(fold(events), T0 + t, policy);
const callback = (outcome: BranchOutcome, t: number): TxCommand =>
  cmd(
    { type: 'RecordBranchResult', data: { gid: 'g1', branchId: '00', op: 'wf1', url: 'http://ap/resume', outcome } },
    t,
  );
const resumed = (t: number, retryAt: number, outcome: 'ongoing' | 'error' = 'ongoing'): TxEvent => ({
  type: 'CheckBackRetryScheduled',
  data: { outcome, detail: expect.any(String), at: at(t), retryAt: at(retryAt) },
});
const active = (events: TxEvent[]): ActiveTransaction => fold(events) as ActiveTransaction;

describe('workflow: prepare', () => {
  it('when prepared, then it is stored prepared with no rows', () => {
    spec
      .given([])
      .when(cmd({ type: 'PrepareGlobalTransaction', data: { definition: wf(), branches: [] } }, 0))
      .then([prepared()]);
    const tx = active([prepared()]);
    expect(tx.status).toBe('prepared');
    expect(tx.branches).toEqual([]);
  });
  it('when prepared again, whatever its status, then nothing changes (the existing one is answered)', () => {
    for (const history of [
      [prepared()],
      [prepared(), { type: 'TransactionSucceeded', data: { at: at(3) } } as TxEvent],
    ]) {
      spec
        .given(history)
        .when(cmd({ type: 'PrepareGlobalTransaction', data: { definition: wf(), branches: [] } }))
        .then([]);
    }
  });
  it('when a saga gid is prepared as a workflow, then it is a conflict', () => {
    spec
      .given([prepared(wf({ transType: 'saga', workflow: undefined }))])
      .when(cmd({ type: 'PrepareGlobalTransaction', data: { definition: wf(), branches: [] } }))
      .thenThrows(TxRejected, /saga transaction, not workflow/);
  });
});

describe('workflow: registerBranch', () => {
  it('when a step outcome is registered, then ONE row is stored with that status, op and data', () => {
    const rows = [row('01', 'action', 'succeed', 'out1')];
    spec
      .given([prepared()])
      .when(cmd({ type: 'RegisterBranch', data: { gid: 'g1', transType: 'workflow', branches: rows } }, 1))
      .then([registered(rows)]);
    const tx = active([prepared(), registered(rows), registered([row('02', 'my-op', 'failed')], 2)]);
    expect(tx.branches.map((b) => `${b.branchId}/${b.op}/${b.status}/${b.data}`)).toEqual([
      '01/action/succeed/out1',
      '02/my-op/failed/d',
    ]);
    expect(tx.branches[0]!.finishTime).toBe(T0 + 1);
  });
  it('when the same row is registered again, then nothing changes; with another status, it is refused', () => {
    const base = [prepared(), registered([row('01', 'a', 'prepared')])];
    spec
      .given(base)
      .when(
        cmd({
          type: 'RegisterBranch',
          data: { gid: 'g1', transType: 'workflow', branches: [row('01', 'a', 'prepared')] },
        }),
      )
      .then([]);
    spec
      .given(base)
      .when(
        cmd({
          type: 'RegisterBranch',
          data: { gid: 'g1', transType: 'workflow', branches: [row('01', 'a', 'succeed')] },
        }),
      )
      .thenThrows(TxRejected, /other values/);
  });
  it('when registering on a finished workflow, then it is a conflict', () => {
    spec
      .given([prepared(), { type: 'TransactionSucceeded', data: { at: at(2) } }])
      .when(
        cmd({
          type: 'RegisterBranch',
          data: { gid: 'g1', transType: 'workflow', branches: [row('01', 'a', 'succeed')] },
        }),
      )
      .thenThrows(TxRejected, /status: prepared found/);
  });
});

describe('workflow: submit', () => {
  it('when submitted with req_extra.status succeed, then it succeeds at once with its result; no branch runs', () => {
    spec
      .given([prepared(), registered([row('01', 'a', 'succeed')])])
      .when(submit({ status: 'succeed', result: 'cmVz' }))
      .then([{ type: 'TransactionSucceeded', data: { at: at(5), result: 'cmVz' } }]);
    const events: TxEvent[] = [prepared(), { type: 'TransactionSucceeded', data: { at: at(5), result: 'cmVz' } }];
    const tx = active(events);
    expect(tx.status).toBe('succeed');
    expect(tx.result).toBe('cmVz');
    expect(planAt(events, 100)).toEqual({ kind: 'done' });
  });
  it('when submitted with status failed, then it fails with the rollback reason and no compensation', () => {
    spec
      .given([prepared()])
      .when(submit({ status: 'failed', rollback_reason: 'step 2 said no' }))
      .then([{ type: 'TransactionFailed', data: { reason: 'step 2 said no', forced: false, at: at(5) } }]);
    const tx = active([
      prepared(),
      { type: 'TransactionFailed', data: { reason: 'step 2 said no', forced: false, at: at(5) } },
    ]);
    expect(tx.status).toBe('failed');
    expect(tx.rollbackReason).toBe('step 2 said no');
  });
  it('when submitted on a finished workflow, then it is a conflict', () => {
    spec
      .given([prepared(), { type: 'TransactionSucceeded', data: { at: at(3) } }])
      .when(submit({ status: 'failed' }))
      .thenThrows(TxRejected, /current status 'succeed', cannot submit/);
  });
  it('when submitted without a final status, or for an unknown gid, then it is refused', () => {
    spec
      .given([prepared()])
      .when(submit({}))
      .thenThrows(TxRejected, /req_extra.status/);
    spec
      .given([prepared()])
      .when(submit({ status: 'prepared' }))
      .thenThrows(TxRejected, /req_extra.status/);
    spec
      .given([])
      .when(submit({ status: 'succeed' }))
      .thenThrows(TxRejected, /no transaction/);
  });
});

describe('workflow: resume callback', () => {
  it('when unfinished, then the callback is due one retry interval after creation, with op = name and the input', () => {
    expect(planAt([prepared()], 9_999)).toEqual({ kind: 'wait', until: T0 + 10_000 });
    expect(planAt([prepared()], 10_000)).toEqual({
      kind: 'call',
      calls: [{ branchId: '00', op: 'wf1', url: 'http://ap/resume', data: '{"a":1}' }],
    });
  });
  it('when the transaction has its own retry_interval, then that is the period, and there is no timeout', () => {
    const d = wf({ options: { ...wf().options, retryInterval: 1 } });
    expect(planAt([prepared(d)], 500)).toEqual({ kind: 'wait', until: T0 + 1000 });
    // Long past any timeout_to_fail: still prepared, still calling back.
    expect(planAt([prepared(d)], 3_600_000)).toMatchObject({ kind: 'call' });
  });
  it('when the callback answers, whatever the outcome, then the next call is scheduled one interval later', () => {
    const outcomes: [BranchOutcome, 'ongoing' | 'error'][] = [
      [{ kind: 'success' }, 'ongoing'],
      [{ kind: 'ongoing', detail: 'busy' }, 'ongoing'],
      [{ kind: 'failure', detail: 'no' }, 'error'],
      [{ kind: 'error', detail: 'HTTP 500' }, 'error'],
    ];
    for (const [outcome, recorded] of outcomes) {
      spec
        .given([prepared()])
        .when(callback(outcome, 10_000))
        .then([resumed(10_000, 20_000, recorded)]);
    }
    const history = [prepared(), resumed(10_000, 20_000), resumed(20_000, 30_000, 'error')].map((e) =>
      e.type === 'CheckBackRetryScheduled' ? { ...e, data: { ...e.data, detail: 'x' } } : e,
    );
    expect(planAt(history, 29_000)).toEqual({ kind: 'wait', until: T0 + 30_000 });
    expect(planAt(history, 30_000)).toMatchObject({ kind: 'call', calls: [{ branchId: '00', op: 'wf1' }] });
    expect(active(history).status).toBe('prepared');
  });
  it('when the answer arrives after the workflow finished, then nothing is recorded, and nothing is planned', () => {
    const done: TxEvent[] = [
      prepared(),
      { type: 'TransactionFailed', data: { reason: 'r', forced: false, at: at(9) } },
    ];
    spec
      .given(done)
      .when(callback({ kind: 'success' }, 10_000))
      .then([]);
    expect(planAt(done, 100_000)).toEqual({ kind: 'done' });
  });
  it('when a workflow is named msg, then its callback is still treated as the workflow resume', () => {
    const d = wf({ workflow: { name: 'msg', input: '' } });
    expect(planAt([prepared(d)], 10_000)).toEqual({
      kind: 'call',
      calls: [{ branchId: '00', op: 'msg', url: 'http://ap/resume', data: '' }],
    });
    spec
      .given([prepared(d)])
      .when(
        cmd(
          {
            type: 'RecordBranchResult',
            data: { gid: 'g1', branchId: '00', op: 'msg', url: 'u', outcome: { kind: 'success' } },
          },
          10_000,
        ),
      )
      .then([resumed(10_000, 20_000)]);
  });
});
