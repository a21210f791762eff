import { describe, expect, it } from 'vitest';
import { Msg } from './msg';
import { BranchIdGen, encodePayload } from './options';
import { Saga } from './saga';
import { Tcc } from './tcc';
import { DtmBadRequest } from './errors';

describe('BranchIdGen', () => {
  it('when branches are added, then ids run 01…99 under the parent, and a 100th is refused', () => {
    const top = new BranchIdGen();
    const ids = Array.from({ length: 99 }, () => top.next());
    expect(ids.slice(0, 3)).toEqual(['01', '02', '03']);
    expect(ids.at(-1)).toBe('99');
    expect(() => top.next()).toThrow(RangeError);
    expect(new BranchIdGen('03').next()).toBe('0301');
    expect(() => new BranchIdGen('x'.repeat(20))).toThrow(RangeError);
  });
});

describe('payloads', () => {
  it('when a payload is given, then it is sent as JSON text; when omitted, as an empty body', () => {
    expect(encodePayload({ amount: 30 })).toBe('{"amount":30}');
    expect(encodePayload('text')).toBe('"text"');
    expect(encodePayload(undefined)).toBe('');
  });
});

describe('Saga', () => {
  it('when built, then its body is what DTM clients send: steps, payloads, options by wire name', () => {
    const saga = new Saga('http://tm/api/dtmsvr', 'g1', {
      retryInterval: 2,
      timeoutToFail: 60,
      requestTimeout: 5,
      retryLimit: 3,
      branchHeaders: { 'x-tenant': 't1' },
    })
      .add('http://a/out', 'http://a/out-revert', { amount: 30 })
      .add('http://b/in', '', undefined);
    expect(saga.toJSON()).toEqual({
      gid: 'g1',
      trans_type: 'saga',
      protocol: '',
      steps: [
        { action: 'http://a/out', compensate: 'http://a/out-revert' },
        { action: 'http://b/in', compensate: '' },
      ],
      payloads: ['{"amount":30}', ''],
      concurrent: false,
      retry_interval: 2,
      timeout_to_fail: 60,
      request_timeout: 5,
      retry_limit: 3,
      branch_headers: { 'x-tenant': 't1' },
    });
  });

  it('when concurrent with orders, then custom_data carries them as DTM reads them', () => {
    const body = new Saga('http://tm', 'g', { waitResult: true })
      .add('http://a', 'http://a')
      .add('http://b', 'http://b')
      .addBranchOrder(1, [0])
      .enableConcurrent()
      .toJSON();
    expect(body).toMatchObject({ concurrent: true, wait_result: true });
    expect(JSON.parse(body.custom_data as string)).toEqual({ orders: { '1': [0] }, concurrent: true });
  });

  it('when an option is not a whole number of seconds, then the saga is refused before anything is sent', () => {
    expect(() => new Saga('http://tm', 'g', { retryInterval: 1.5 })).toThrow(TypeError);
    expect(() => new Saga('http://tm', 'g', { timeoutToFail: -1 })).toThrow(TypeError);
  });
});

describe('Msg', () => {
  it('when delayed, concurrent and with a check-back, then the body says so', () => {
    const msg = new Msg('http://tm', 'm1', { concurrent: true })
      .add('http://b/in', { a: 1 })
      .addTopic('orders')
      .setDelay(5);
    expect(msg.toJSON()).toEqual({
      gid: 'm1',
      trans_type: 'msg',
      protocol: '',
      steps: [{ action: 'http://b/in' }, { action: 'topic://orders' }],
      payloads: ['{"a":1}', ''],
      concurrent: true,
      custom_data: '{"delay":5}',
    });
  });
});

describe('Tcc.fromQuery (nested TCC)', () => {
  it('when a try request carries dtm, gid and branch_id, then sub-branches are numbered under it', () => {
    const tcc = Tcc.fromQuery({ dtm: 'http://tm/api/dtmsvr', gid: 'g', branch_id: '02', op: 'try' });
    expect(tcc.gid).toBe('g');
    expect(tcc.dtm).toBe('http://tm/api/dtmsvr');
    expect(() => Tcc.fromQuery({ gid: 'g' })).toThrow(DtmBadRequest);
  });
});
