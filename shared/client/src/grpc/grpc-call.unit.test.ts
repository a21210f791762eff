import { describe, expect, it } from 'vitest';
import { Metadata, status as Code, type ServiceError } from '@grpc/grpc-js';
import { DtmBadRequest, DtmFailure, DtmOngoing, DtmTransportError } from '../errors';
import { errorOfGrpcStatus, parseGrpcUrl } from './grpc-call';
import { MsgGrpc } from './msg-grpc';
import { SagaGrpc } from './saga-grpc';
import { TccGrpc } from './tcc-grpc';

const status = (code: Code, details: string): ServiceError =>
  Object.assign(new Error(details), { code, details, metadata: new Metadata() });

describe('gRPC branch URLs', () => {
  it("when a URL is in DTM's format, then it splits into the channel target and the method path", () => {
    expect(parseGrpcUrl('localhost:50051/busi.Busi/TransIn')).toEqual({
      target: 'localhost:50051',
      path: '/busi.Busi/TransIn',
    });
    expect(parseGrpcUrl('dns:///rm.svc:9000/a.b.C/D')).toEqual({ target: 'dns:///rm.svc:9000', path: '/a.b.C/D' });
  });

  it('when a URL lacks the service or method, then it is refused', () => {
    expect(() => parseGrpcUrl('localhost:50051')).toThrow(TypeError);
    expect(() => parseGrpcUrl('localhost:50051/OnlyMethod')).toThrow(/host:port\/package\.Service\/Method/);
  });
});

describe('gRPC status → SDK errors, as dtmgrpc reads them', () => {
  it('when ABORTED, then DtmFailure; FAILED_PRECONDITION or the legacy ABORTED "ONGOING", then DtmOngoing', () => {
    expect(errorOfGrpcStatus(status(Code.ABORTED, 'no money'), 'x')).toBeInstanceOf(DtmFailure);
    expect(errorOfGrpcStatus(status(Code.ABORTED, 'ONGOING'), 'x')).toBeInstanceOf(DtmOngoing);
    expect(errorOfGrpcStatus(status(Code.FAILED_PRECONDITION, 'later'), 'x')).toBeInstanceOf(DtmOngoing);
  });

  it('when any other code, then DtmTransportError with the code and message', () => {
    const e = errorOfGrpcStatus(status(Code.INVALID_ARGUMENT, 'gid is required'), 'TM Submit');
    expect(e).toBeInstanceOf(DtmTransportError);
    expect(e).toMatchObject({ grpcCode: Code.INVALID_ARGUMENT, body: 'gid is required' });
    expect(e.message).toBe('TM Submit: INVALID_ARGUMENT gid is required');
  });
});

describe('DtmRequest of the transaction classes', () => {
  it("when a saga is built, then its request is what DTM's SagaGrpc sends", () => {
    const req = new SagaGrpc('tm:36790', 'g1', { timeoutToFail: 60, branchHeaders: { a: 'b' } })
      .add('rm:1/s.S/A', 'rm:1/s.S/AR', Uint8Array.from([1]))
      .add('rm:1/s.S/B', '', undefined)
      .toRequest();
    expect(req).toEqual({
      Gid: 'g1',
      TransType: 'saga',
      Steps: '[{"action":"rm:1/s.S/A","compensate":"rm:1/s.S/AR"},{"action":"rm:1/s.S/B","compensate":""}]',
      BinPayloads: [Uint8Array.from([1]), new Uint8Array()],
      CustomedData: '',
      TransOptions: {
        WaitResult: false,
        TimeoutToFail: 60,
        RetryInterval: 0,
        RequestTimeout: 0,
        RetryLimit: 0,
        BranchHeaders: { a: 'b' },
      },
    });
  });

  it('when a msg has a delay, then CustomedData carries it', () => {
    expect(new MsgGrpc('tm:1', 'm').add('rm:1/s.S/A', 'x').setDelay(5).toRequest().CustomedData).toBe('{"delay":5}');
  });

  it('when an RM starts a nested TCC from its metadata, then it joins that TM and gid; without them it is refused', () => {
    const md = new Metadata();
    md.set('dtm-dtm', 'tm:36790');
    md.set('dtm-gid', 'g');
    md.set('dtm-branch_id', '03');
    const tcc = TccGrpc.fromMetadata(md);
    expect([tcc.client.target, tcc.gid]).toEqual(['tm:36790', 'g']);
    expect(() => TccGrpc.fromMetadata(new Metadata())).toThrow(DtmBadRequest);
  });
});
