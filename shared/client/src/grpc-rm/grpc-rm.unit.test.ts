import { Metadata, status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { BranchBarrier } from '../barrier';
import { DtmBadRequest, DtmFailure, DtmOngoing } from '../errors';
import { grpcRmHandler } from './handler';
import { grpcBranchInfo } from './metadata';
import { dtmGrpcError, grpcStatusOf } from './status';

const metadata = (entries: Record<string, string>): Metadata => {
  const md = new Metadata();
  for (const [k, v] of Object.entries(entries)) md.set(k, v);
  return md;
};
const TM_CALL = {
  'dtm-gid': 'g1',
  'dtm-trans_type': 'saga',
  'dtm-branch_id': '01',
  'dtm-op': 'compensate',
  'dtm-dtm': '',
};

/** Runs a wrapped handler once and resolves with what it passed to the callback. */
const run = <Res>(h: ReturnType<typeof grpcRmHandler<unknown, Res>>, md = metadata(TM_CALL)) =>
  new Promise<{ err: unknown; value: Res | undefined }>((resolve) => {
    const cb: sendUnaryData<Res> = (err, value) => resolve({ err, value: value ?? undefined });
    h({ metadata: md, request: {} } as ServerUnaryCall<unknown, Res>, cb);
  });

describe('gRPC RM helpers', () => {
  it('reads the dtm metadata the TM sends into the branch info', () => {
    expect(grpcBranchInfo(metadata({ ...TM_CALL, 'dtm-phase2_url': 'rm:1/busi.Busi/X' }))).toEqual({
      gid: 'g1',
      transType: 'saga',
      branchId: '01',
      op: 'compensate',
      dtm: '',
      phase2Url: 'rm:1/busi.Busi/X',
    });
  });

  it('refuses a call without the dtm metadata, naming what is missing', () => {
    expect(() => grpcBranchInfo(metadata({ 'dtm-gid': 'g1' }))).toThrow(DtmBadRequest);
    expect(() => grpcBranchInfo(metadata({ 'dtm-gid': 'g1' }))).toThrow(/dtm-trans_type ''/);
  });

  it('builds the barrier of a call from its metadata', () => {
    const bb = BranchBarrier.fromGrpcMetadata(metadata(TM_CALL));
    expect(bb.toString()).toBe('transInfo: saga g1 01 compensate');
    expect(() => BranchBarrier.fromGrpcMetadata(metadata({}))).toThrow(DtmBadRequest);
  });

  it('answers FAILURE with ABORTED and ONGOING with FAILED_PRECONDITION, as the TM reads them', () => {
    expect(dtmGrpcError.failure('no funds')).toEqual({ code: status.ABORTED, details: 'no funds' });
    expect(dtmGrpcError.ongoing()).toEqual({ code: status.FAILED_PRECONDITION, details: 'ONGOING' });
    expect(grpcStatusOf(new DtmFailure('no'))).toEqual({ code: status.ABORTED, details: 'no' });
    expect(grpcStatusOf(new DtmOngoing('later'))).toEqual({ code: status.FAILED_PRECONDITION, details: 'later' });
    expect(grpcStatusOf(new DtmBadRequest('bad'))).toEqual({ code: status.INVALID_ARGUMENT, details: 'bad' });
    expect(grpcStatusOf(new Error('db down'))).toEqual({ code: status.INTERNAL, details: 'db down' });
  });

  it('wraps a handler: a value or the empty reply on success, the mapped status on a rejection', async () => {
    expect(await run(grpcRmHandler(async () => undefined))).toEqual({ err: null, value: {} });
    expect(await run(grpcRmHandler(async () => undefined, Buffer.alloc(0)))).toEqual({
      err: null,
      value: Buffer.alloc(0),
    });
    expect(await run(grpcRmHandler(async () => ({ message: 'hi' })))).toEqual({ err: null, value: { message: 'hi' } });
    expect(
      await run(
        grpcRmHandler(async () => {
          throw new DtmFailure('over the limit');
        }),
      ),
    ).toMatchObject({ err: { code: status.ABORTED, details: 'over the limit' } });
    expect(
      await run(
        grpcRmHandler(async (call) => {
          grpcBranchInfo(call.metadata);
        }),
        new Metadata(),
      ),
    ).toMatchObject({ err: { code: status.INVALID_ARGUMENT } });
  });
});
