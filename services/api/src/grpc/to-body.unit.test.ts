import { describe, expect, it } from 'vitest';
import { status as Code } from '@grpc/grpc-js';
import { TxRejected } from '@dtm-ts/domain';
import { BadRequest } from '../http/bad-request';
import type { DtmBranchRequest, DtmRequest } from './dtmgimp';
import { grpcCodeOf, grpcError } from './status';
import { branchBody, globalBody, progressesReply } from './to-body';

const request = (over: Partial<DtmRequest> = {}): DtmRequest => ({
  Gid: 'g1',
  TransType: 'saga',
  TransOptions: null,
  CustomedData: '',
  BinPayloads: [],
  QueryPrepared: '',
  Steps: '',
  ReqExtra: {},
  RollbackReason: '',
  ...over,
});

describe('DtmRequest → the body DtmService takes', () => {
  it('when every field is set, then each lands on its JSON name as TransFromDtmRequest reads it', () => {
    const body = globalBody(
      request({
        TransType: 'msg',
        TransOptions: {
          WaitResult: true,
          TimeoutToFail: 60,
          RetryInterval: 5,
          BranchHeaders: { 'x-tenant': 't1' },
          RequestTimeout: 7,
          RetryLimit: 3,
        },
        CustomedData: '{"delay":2}',
        BinPayloads: [Uint8Array.from([0, 1, 254, 255]), new Uint8Array()],
        QueryPrepared: 'rm:50051/busi.Busi/QueryPrepared',
        Steps: '[{"action":"rm:50051/busi.Busi/TransIn"},{"action":"http://rm/x"}]',
        ReqExtra: { status: 'succeed' },
        RollbackReason: 'why',
      }),
    );
    expect(body).toEqual({
      gid: 'g1',
      trans_type: 'msg',
      protocol: 'grpc',
      steps: [{ action: 'rm:50051/busi.Busi/TransIn' }, { action: 'http://rm/x' }],
      bin_payloads: ['AAH+/w==', ''],
      custom_data: '{"delay":2}',
      query_prepared: 'rm:50051/busi.Busi/QueryPrepared',
      rollback_reason: 'why',
      req_extra: { status: 'succeed' },
      wait_result: true,
      timeout_to_fail: 60,
      retry_interval: 5,
      request_timeout: 7,
      retry_limit: 3,
      branch_headers: { 'x-tenant': 't1' },
    });
  });

  it('when TransOptions is absent and Steps empty, then options are the defaults and there are no steps', () => {
    expect(globalBody(request())).toMatchObject({ steps: undefined, wait_result: false, timeout_to_fail: 0 });
  });

  it('when Steps is not JSON, then the request is refused naming Steps', () => {
    expect(() => globalBody(request({ Steps: '[{"action":' }))).toThrow(BadRequest);
    expect(() => globalBody(request({ Steps: 'nope' }))).toThrow(/Steps must be JSON text/);
  });
});

describe('DtmBranchRequest → the registerBranch body', () => {
  const branch = (over: Partial<DtmBranchRequest>): DtmBranchRequest => ({
    Gid: 'g1',
    TransType: 'tcc',
    BranchID: '01',
    Op: '',
    Data: {},
    BusiPayload: new Uint8Array(),
    ...over,
  });

  it('when a tcc branch is registered, then confirm and cancel come from Data and the payload is base64', () => {
    expect(
      branchBody(branch({ Data: { confirm: 'h:1/s.S/C', cancel: 'h:1/s.S/X' }, BusiPayload: Buffer.from('hi') })),
    ).toEqual({
      gid: 'g1',
      trans_type: 'tcc',
      branch_id: '01',
      protocol: 'grpc',
      bin_data: 'aGk=',
      confirm: 'h:1/s.S/C',
      cancel: 'h:1/s.S/X',
    });
  });

  it('when Data has keys DTM does not read, then they are left out (they cannot override gid or bin_data)', () => {
    const body = branchBody(
      branch({ TransType: 'workflow', Data: { op: 'a', status: 'succeed', gid: 'x', sync: '1' } }),
    );
    expect(body).toMatchObject({ gid: 'g1', op: 'a', status: 'succeed' });
    expect(body).not.toHaveProperty('sync');
  });
});

describe('prepareWorkflow answer → DtmProgressesReply', () => {
  it('when progress is recorded, then bin_data comes back as the bytes', () => {
    const reply = progressesReply({
      transaction: { gid: 'w', status: 'prepared', rollback_reason: '', result: '' },
      progresses: [{ status: 'succeed', bin_data: 'AAH+/w==', branch_id: '01', op: 'action' }],
    });
    expect(reply.Transaction).toEqual({ Gid: 'w', Status: 'prepared', RollbackReason: '', Result: '' });
    expect([...reply.Progresses[0]!.BinData]).toEqual([0, 1, 254, 255]);
    expect(reply.Progresses[0]).toMatchObject({ Status: 'succeed', BranchID: '01', Op: 'action' });
  });
});

describe('errors → gRPC status', () => {
  it('when the API would answer an HTTP status, then the gRPC code follows the shared table', () => {
    expect([400, 413, 422].map(grpcCodeOf)).toEqual([
      Code.INVALID_ARGUMENT,
      Code.INVALID_ARGUMENT,
      Code.INVALID_ARGUMENT,
    ]);
    expect(grpcCodeOf(404)).toBe(Code.NOT_FOUND);
    expect(grpcCodeOf(409)).toBe(Code.ABORTED);
    expect(grpcCodeOf(425)).toBe(Code.FAILED_PRECONDITION);
    expect(grpcCodeOf(401)).toBe(Code.UNAUTHENTICATED);
    expect(grpcCodeOf(403)).toBe(Code.PERMISSION_DENIED);
    expect(grpcCodeOf(500)).toBe(Code.INTERNAL);
  });

  it('when the service throws, then FAILURE is ABORTED, bad input INVALID_ARGUMENT, an unknown gid NOT_FOUND, a bug INTERNAL', () => {
    expect(grpcError(new TxRejected('conflict', "current status 'failed', cannot submit."))).toEqual({
      code: Code.ABORTED,
      details: "current status 'failed', cannot submit.",
      internal: false,
    });
    expect(grpcError(new BadRequest('gid is required'))).toMatchObject({
      code: Code.INVALID_ARGUMENT,
      details: 'gid is required',
    });
    expect(grpcError(new TxRejected('invalid', 'x'))).toMatchObject({ code: Code.INVALID_ARGUMENT });
    expect(grpcError(new TxRejected('not-found', "no transaction with gid 'g'"))).toMatchObject({
      code: Code.NOT_FOUND,
    });
    expect(grpcError(new Error('redis down'))).toMatchObject({ code: Code.INTERNAL, internal: true });
  });
});
