import { describe, expect, it } from 'vitest';
import { deciderSpec } from '@dtm-ts/testing/decider-spec';
import type { TxCommand } from './commands';
import { decide } from './decide';
import { TxRejected } from './errors';
import type { TxEvent } from './events';
import { at, policy, T0 } from './fixtures.unit-support';
import { plan, type Plan } from './plan';
import { evolve, fold, initialState } from './state';
import { DEFAULT_OPTIONS, type BranchDef, type TransDefinition, type TransType } from './types';

const spec = deciderSpec({ decide, evolve, initialState });
const def = (transType: TransType, extra: Partial<TransDefinition> = {}): TransDefinition => ({
  gid: 'g1',
  transType,
  protocol: 'http',
  steps: [],
  payloads: [],
  customData: '',
  queryPrepared: 'http://ap/qp',
  options: DEFAULT_OPTIONS,
  ordering: { concurrent: false, orders: {} },
  delayS: 0,
  ...extra,
});
const prepared = (d: TransDefinition, branches: BranchDef[] = []): TxEvent => ({
  type: 'TransactionPrepared',
  data: { definition: d, branches, at: at(0) },
});
const tccRows = (id: string): BranchDef[] => [
  { branchId: id, op: 'cancel', url: `http://rm/cancel${id}`, data: 'd' },
  { branchId: id, op: 'confirm', url: `http://rm/confirm${id}`, data: 'd' },
];
const registered = (rows: BranchDef[], t = 1): TxEvent => ({
  type: 'BranchesRegistered',
  data: { branches: rows, at: at(t) },
});
const submitted = (t = 2): TxEvent => ({ type: 'TransactionSubmitted', data: { at: at(t) } });
const ok = (branchId: string, op: BranchDef['op'], t: number): TxEvent => ({
  type: 'BranchSucceeded',
  data: { branchId, op, at: at(t) },
});
const planAt = (events: TxEvent[], t: number): Plan => plan(fold(events), T0 + t, policy);
const calls = (p: Plan) => (p.kind === 'call' ? p.calls.map((c) => `${c.branchId}/${c.op}`) : [`<${p.kind}>`]);
const cmd = (c: Omit<TxCommand, 'metadata'>, t = 5): TxCommand =>
  ({ ...c, metadata: { now: T0 + t, policy } }) as TxCommand;

describe('tcc', () => {
  const tcc = def('tcc');
  const base = [prepared(tcc), registered(tccRows('01')), registered(tccRows('02'))];
  it('when registering on a prepared tcc, then the rows are recorded (cancel, confirm)', () =>
    spec
      .given([prepared(tcc)])
      .when(cmd({ type: 'RegisterBranch', data: { gid: 'g1', transType: 'tcc', branches: tccRows('01') } }, 1))
      .then([registered(tccRows('01'))]));
  it('when registering the same rows again, then nothing changes; with other values, it is refused', () => {
    spec
      .given(base)
      .when(cmd({ type: 'RegisterBranch', data: { gid: 'g1', transType: 'tcc', branches: tccRows('01') } }))
      .then([]);
    const other = tccRows('01').map((r) => ({ ...r, data: 'other' }));
    spec
      .given(base)
      .when(cmd({ type: 'RegisterBranch', data: { gid: 'g1', transType: 'tcc', branches: other } }))
      .thenThrows(TxRejected, /other values/);
  });
  it('when a registration would take the transaction past MAX_BRANCHES branch ids, then it is refused; up to it, recorded', () => {
    const register = (id: string) =>
      cmd({ type: 'RegisterBranch', data: { gid: 'g1', transType: 'tcc', branches: tccRows(id), maxBranches: 2 } }, 1);
    spec
      .given(base)
      .when(register('03'))
      .thenThrows(TxRejected, /too many branches: 3 > 2 \(MAX_BRANCHES\)/);
    spec
      .given([prepared(tcc), registered(tccRows('01'))])
      .when(register('02'))
      .then([registered(tccRows('02'))]);
    // A retried registration of rows already there adds nothing, so it is not refused at the bound.
    spec.given(base).when(register('02')).then([]);
  });
  it('when registering on a submitted or unknown tcc, then it is a conflict', () => {
    spec
      .given([...base, submitted()])
      .when(cmd({ type: 'RegisterBranch', data: { gid: 'g1', transType: 'tcc', branches: tccRows('03') } }))
      .thenThrows(TxRejected, /status: prepared found/);
    spec
      .given([])
      .when(cmd({ type: 'RegisterBranch', data: { gid: 'g1', transType: 'tcc', branches: tccRows('03') } }))
      .thenThrows(TxRejected, /no trans with gid: g1/);
  });
  it('when submitted, then confirms run one at a time in reverse registration order, then it succeeds', () => {
    expect(calls(planAt([...base, submitted()], 3))).toEqual(['02/confirm']);
    expect(calls(planAt([...base, submitted(), ok('02', 'confirm', 3)], 3))).toEqual(['01/confirm']);
    expect(planAt([...base, submitted(), ok('02', 'confirm', 3), ok('01', 'confirm', 4)], 4)).toMatchObject({
      kind: 'append',
      events: [{ type: 'TransactionSucceeded' }],
    });
  });
  it('when prepared, then it waits for the server timeout, then aborts and cancels in reverse order', () => {
    expect(planAt(base, 3)).toEqual({ kind: 'wait', until: T0 + 35_000 });
    expect(planAt(base, 35_000)).toMatchObject({
      kind: 'append',
      events: [{ type: 'TransactionAborting', data: { reason: 'Timeout after 35 seconds' } }],
    });
    const aborting: TxEvent = { type: 'TransactionAborting', data: { reason: 'r', at: at(5) } };
    expect(calls(planAt([...base, aborting], 5))).toEqual(['02/cancel']);
    expect(planAt([...base, aborting, ok('02', 'cancel', 6), ok('01', 'cancel', 7)], 7)).toMatchObject({
      kind: 'append',
      events: [{ type: 'TransactionFailed' }],
    });
  });
  it('when aborted while prepared, then aborting; aborted again, then nothing; submitted or finished, then a conflict', () => {
    const abort = (t: string) =>
      cmd({ type: 'AbortGlobalTransaction', data: { gid: 'g1', transType: t, reason: 'no' } });
    spec
      .given(base)
      .when(abort('tcc'))
      .then([{ type: 'TransactionAborting', data: { reason: 'no', at: at(5) } }]);
    spec
      .given([...base, { type: 'TransactionAborting', data: { reason: 'no', at: at(4) } }])
      .when(abort('tcc'))
      .then([]);
    spec
      .given([...base, submitted()])
      .when(abort('tcc'))
      .thenThrows(TxRejected, /trans type: 'tcc' current status 'submitted', cannot abort/);
    spec
      .given(base)
      .when(abort('saga'))
      .thenThrows(TxRejected, /cannot abort/);
  });
  it('when a confirm answers FAILURE, then it is retried like an error', () => {
    const r = decide(
      cmd({
        type: 'RecordBranchResult',
        data: { gid: 'g1', branchId: '02', op: 'confirm', url: 'u', outcome: { kind: 'failure', detail: 'x' } },
      }),
      fold([...base, submitted()]),
    );
    expect(r).toMatchObject([{ type: 'BranchRetryScheduled', data: { outcome: 'error' } }]);
  });
});

describe('xa', () => {
  const xa = def('xa', { options: { ...def('xa').options, timeoutToFail: 4 } });
  const rows = (id: string): BranchDef[] => [
    { branchId: id, op: 'rollback', url: 'http://rm/xa', data: '' },
    { branchId: id, op: 'commit', url: 'http://rm/xa', data: '' },
  ];
  const base = [prepared(xa), registered(rows('01')), registered(rows('02'))];
  it('when submitted, then commits run in forward order', () => {
    expect(calls(planAt([...base, submitted()], 3))).toEqual(['01/commit']);
    expect(calls(planAt([...base, submitted(), ok('01', 'commit', 3)], 3))).toEqual(['02/commit']);
  });
  it('when its own timeout passes while prepared, then it rolls back in forward order', () => {
    expect(planAt(base, 4_000)).toMatchObject({
      kind: 'append',
      events: [{ data: { reason: 'Timeout after 4 seconds' } }],
    });
    expect(
      calls(planAt([...base, { type: 'TransactionAborting', data: { reason: 'r', at: at(4_000) } }], 4_000)),
    ).toEqual(['01/rollback']);
  });
});

describe('msg', () => {
  const m = def('msg', {
    steps: [{ action: 'http://rm/a' }, { action: 'http://rm/b' }],
    options: { ...def('msg').options, timeoutToFail: 10, retryInterval: 2 },
  });
  const rows: BranchDef[] = [
    { branchId: '01', op: 'action', url: 'http://rm/a', data: 'p1' },
    { branchId: '02', op: 'action', url: 'http://rm/b', data: 'p2' },
  ];
  const base = [prepared(m, rows)];
  const checkBack = (kind: 'success' | 'failure' | 'ongoing' | 'error', t: number) =>
    cmd(
      {
        type: 'RecordBranchResult',
        data: {
          gid: 'g1',
          branchId: '00',
          op: 'msg',
          url: 'http://ap/qp',
          outcome: kind === 'success' ? { kind } : { kind, detail: kind },
        },
      },
      t,
    );
  it('when prepared, then nothing happens before the timeout; after it, the TM asks query_prepared', () => {
    expect(planAt(base, 5_000)).toEqual({ kind: 'wait', until: T0 + 10_000 });
    expect(planAt(base, 10_000)).toEqual({
      kind: 'call',
      calls: [{ branchId: '00', op: 'msg', url: 'http://ap/qp', data: '' }],
    });
  });
  it('when the check-back says SUCCESS, then submitted; FAILURE, then failed; ONGOING, then asked again after the fixed interval', () => {
    spec
      .given(base)
      .when(checkBack('success', 10_000))
      .then([{ type: 'TransactionSubmitted', data: { at: at(10_000) } }]);
    spec
      .given(base)
      .when(checkBack('failure', 10_000))
      .then([
        {
          type: 'TransactionFailed',
          data: { reason: 'url:http://ap/qp return failed: failure FAILURE', forced: false, at: at(10_000) },
        },
      ]);
    spec
      .given(base)
      .when(checkBack('ongoing', 10_000))
      .then([
        {
          type: 'CheckBackRetryScheduled',
          data: { outcome: 'ongoing', detail: 'ongoing', at: at(10_000), retryAt: at(12_000) },
        },
      ]);
    const after = [
      ...base,
      {
        type: 'CheckBackRetryScheduled' as const,
        data: { outcome: 'error' as const, detail: 'e', at: at(10_000), retryAt: at(12_000) },
      },
    ];
    expect(planAt(after, 11_000)).toEqual({ kind: 'wait', until: T0 + 12_000 });
    spec
      .given(after)
      .when(checkBack('error', 12_000))
      .then([
        {
          type: 'CheckBackRetryScheduled',
          data: { outcome: 'error', detail: 'error', at: at(12_000), retryAt: at(16_000) },
        },
      ]);
  });
  it('when the check-back answer comes after a submit, then it changes nothing', () =>
    spec
      .given([...base, submitted()])
      .when(checkBack('failure', 10_000))
      .then([]));
  it('when submitted, then actions are delivered in order; concurrent, all at once; a delay holds them', () => {
    expect(calls(planAt([...base, submitted()], 3))).toEqual(['01/action']);
    const conc = [prepared({ ...m, ordering: { concurrent: true, orders: {} } }, rows), submitted()];
    expect(calls(planAt(conc, 3))).toEqual(['01/action', '02/action']);
    const delayed = [prepared({ ...m, delayS: 5 }, rows), submitted()];
    expect(planAt(delayed, 3)).toEqual({ kind: 'wait', until: T0 + 5_000 });
    expect(calls(planAt(delayed, 5_000))).toEqual(['01/action']);
  });
  it('when a delivery answers FAILURE, then it is retried (a submitted message never rolls back)', () => {
    const r = decide(
      cmd({
        type: 'RecordBranchResult',
        data: { gid: 'g1', branchId: '01', op: 'action', url: 'u', outcome: { kind: 'failure', detail: 'x' } },
      }),
      fold([...base, submitted()]),
    );
    expect(r).toMatchObject([{ type: 'BranchRetryScheduled' }]);
  });
  it('when a prepared message is aborted, then it fails at once; a submitted one cannot be aborted', () => {
    const abort = cmd({ type: 'AbortGlobalTransaction', data: { gid: 'g1', transType: 'msg', reason: '' } });
    spec
      .given(base)
      .when(abort)
      .then([{ type: 'TransactionFailed', data: { reason: '', forced: false, at: at(5) } }]);
    spec
      .given([...base, submitted()])
      .when(abort)
      .thenThrows(TxRejected, /cannot abort/);
  });
  it('when prepared twice, then the second is a no-op; after submit, a conflict', () => {
    const prep = cmd({ type: 'PrepareGlobalTransaction', data: { definition: m, branches: rows } });
    spec.given(base).when(prep).then([]);
    spec
      .given([...base, submitted()])
      .when(prep)
      .thenThrows(TxRejected, /cannot prepare/);
    spec
      .given([])
      .when(prep)
      .then([{ type: 'TransactionPrepared', data: { definition: m, branches: rows, at: at(5) } }]);
  });
});

describe('registering on a gRPC transaction (payloads are bytes, stored base64)', () => {
  const grpcTcc = def('tcc', { protocol: 'grpc' });
  const rows = (data: string, binary?: boolean): BranchDef[] => [
    {
      branchId: '01',
      op: 'cancel',
      url: 'rm:9000/busi.Busi/Cancel',
      data,
      ...(binary === undefined ? {} : { binary }),
    },
    {
      branchId: '01',
      op: 'confirm',
      url: 'rm:9000/busi.Busi/Confirm',
      data,
      ...(binary === undefined ? {} : { binary }),
    },
  ];
  const register = (branches: BranchDef[], d = grpcTcc) =>
    cmd({ type: 'RegisterBranch', data: { gid: 'g1', transType: d.transType, branches } }, 1);

  it('when bin_data is registered, then the base64 is stored as it is, without the flag', () =>
    spec
      .given([prepared(grpcTcc)])
      .when(register(rows('CB4=', true)))
      .then([registered(rows('CB4='))]));

  it('when text data is registered, then the base64 of its UTF-8 is stored (DTM: []byte(data))', () =>
    spec
      .given([prepared(grpcTcc)])
      .when(register(rows('Zoë', false)))
      .then([registered(rows(Buffer.from('Zoë').toString('base64')))]));

  it('when the same bytes are registered again as text, then it is the same registration', () =>
    spec
      .given([prepared(grpcTcc), registered(rows(Buffer.from('{"a":1}').toString('base64')))])
      .when(register(rows('{"a":1}', false)))
      .then([]));

  it('when a row arrives already in the transaction encoding (no flag), then it is stored as it is', () =>
    spec
      .given([prepared(grpcTcc)])
      .when(register(rows('CB4=')))
      .then([registered(rows('CB4='))]));

  it('when bin_data is registered on an http transaction, then its UTF-8 text is stored', () =>
    spec
      .given([prepared(def('tcc'))])
      .when(register(rows(Buffer.from('{"a":1}').toString('base64'), true), def('tcc')))
      .then([registered(rows('{"a":1}'))]));

  it('when a json-rpc branch is registered with data that is not a JSON object, then it is refused', () => {
    const rpc = def('tcc', { protocol: 'json-rpc' });
    spec
      .given([prepared(rpc)])
      .when(register(rows('[1,2]'), rpc))
      .thenThrows(TxRejected, /must be a JSON object/);
    spec
      .given([prepared(rpc)])
      .when(register(rows('{"amount":30}'), rpc))
      .then([registered(rows('{"amount":30}'))]);
  });
});
