import { describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { uniqueGid } from '../support/tm-harness';
import type { GrpcReply } from '../peers/grpc-branch-peer';
import { b64, retriesOf, useGrpcFixture } from '../peers/grpc-fixture';

// The status table of gRPC branches, phase by phase (reference §3.2, DESIGN invariant 5): OK succeeds; ABORTED
// is final only for a saga action (elsewhere it is retried, the call must succeed); FAILED_PRECONDITION (and the
// legacy ABORTED "ONGOING") waits the fixed retry_interval; UNAVAILABLE, INTERNAL and DEADLINE_EXCEEDED back off,
// doubling. The spacing is read from the events (retryAt − at), so a loaded machine cannot blur it.
const fx = useGrpcFixture({ backoffCapS: 8 });
const OPTIONS = { protocol: 'grpc', retry_interval: 1, request_timeout: 1 };
const ok = { status: 200, body: { dtm_result: 'SUCCESS' } };

/** After a first ABORTED (second phases only): not done yet twice, then three kinds of errors, then OK. */
const TROUBLE: GrpcReply[] = [
  { code: status.FAILED_PRECONDITION, details: 'not yet' },
  { code: status.ABORTED, details: 'ONGOING' },
  { code: status.UNAVAILABLE, details: 'rm restarting' },
  { code: status.INTERNAL, details: 'db down' },
  'hang', // past request_timeout: DEADLINE_EXCEEDED
  status.OK,
];
/** The retries TROUBLE causes: fixed 1 s twice (ongoing), then 1, 2, 4 s (consecutive errors double). */
const TROUBLE_RETRIES = [
  { outcome: 'ongoing', delayMs: 1_000, reason: 'not yet' },
  { outcome: 'ongoing', delayMs: 1_000, reason: 'ONGOING' },
  { outcome: 'error', delayMs: 1_000, reason: 'gRPC UNAVAILABLE: rm restarting' },
  { outcome: 'error', delayMs: 2_000, reason: 'gRPC INTERNAL: db down' },
  { outcome: 'error', delayMs: 4_000, reason: expect.stringContaining('gRPC DEADLINE_EXCEEDED') },
];
/** In a second phase, a first ABORTED is an error like any other: retried after the base interval. */
const SECOND_PHASE: GrpcReply[] = [{ code: status.ABORTED, details: 'no' }, ...TROUBLE];
const SECOND_PHASE_RETRIES = [
  { outcome: 'error', delayMs: 1_000, reason: expect.stringContaining('FAILURE is retried here') },
  ...TROUBLE_RETRIES,
];

const register = async (gid: string, transType: 'tcc' | 'xa') => {
  expect(await fx.dtm.post('/prepare', { gid, trans_type: transType, ...OPTIONS })).toEqual(ok);
  const reg =
    transType === 'tcc'
      ? { confirm: fx.grpc.url('TransOutConfirm'), cancel: fx.grpc.url('TransOutRevert'), bin_data: b64('x') }
      : { url: fx.grpc.url('TransOutXa') };
  expect(await fx.dtm.post('/registerBranch', { gid, trans_type: transType, branch_id: '01', ...reg })).toEqual(ok);
};

describe.concurrent('gRPC status table, phase by phase', () => {
  it('saga action', async ({ expect }) => {
    const gid = uniqueGid('st-action');
    fx.grpc.script(gid, 'TransOut', TROUBLE);
    const body = {
      gid,
      trans_type: 'saga',
      steps: [{ action: fx.grpc.url('TransOut'), compensate: fx.grpc.url('TransOutRevert') }],
      bin_payloads: [b64('a')],
      ...OPTIONS,
    };
    expect(await fx.dtm.post('/submit', body)).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed', 40_000);
    expect(await retriesOf(fx.dtm, gid, '01', 'action')).toEqual(TROUBLE_RETRIES);
    expect(fx.grpc.callsTo(gid, 'TransOut')).toHaveLength(TROUBLE.length);
    expect(fx.grpc.callsTo(gid, 'TransOutRevert')).toHaveLength(0);
  });

  it('saga compensate (ABORTED there is retried)', async ({ expect }) => {
    const gid = uniqueGid('st-comp');
    fx.grpc.script(gid, 'TransIn', [{ code: status.ABORTED, details: 'refused' }]);
    fx.grpc.script(gid, 'TransOutRevert', SECOND_PHASE);
    const body = {
      gid,
      trans_type: 'saga',
      steps: [
        { action: fx.grpc.url('TransOut'), compensate: fx.grpc.url('TransOutRevert') },
        { action: fx.grpc.url('TransIn'), compensate: fx.grpc.url('TransInRevert') },
      ],
      bin_payloads: [b64('a'), b64('b')],
      ...OPTIONS,
    };
    expect(await fx.dtm.post('/submit', body)).toEqual(ok);
    await fx.dtm.waitFor(gid, 'failed', 40_000);
    expect(await retriesOf(fx.dtm, gid, '01', 'compensate')).toEqual(SECOND_PHASE_RETRIES);
    expect(await retriesOf(fx.dtm, gid, '02', 'action')).toEqual([]);
    // The refused step's compensation came first (reverse order), and step 1's only after it.
    const [second] = fx.grpc.callsTo(gid, 'TransInRevert');
    expect(second!.at).toBeLessThanOrEqual(fx.grpc.callsTo(gid, 'TransOutRevert')[0]!.at);
  });

  it('tcc confirm', async ({ expect }) => {
    const gid = uniqueGid('st-confirm');
    fx.grpc.script(gid, 'TransOutConfirm', SECOND_PHASE);
    await register(gid, 'tcc');
    expect(await fx.dtm.post('/submit', { gid, trans_type: 'tcc' })).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed', 40_000);
    expect(await retriesOf(fx.dtm, gid, '01', 'confirm')).toEqual(SECOND_PHASE_RETRIES);
    expect(fx.grpc.callsTo(gid, 'TransOutRevert')).toHaveLength(0);
  });

  it('tcc cancel', async ({ expect }) => {
    const gid = uniqueGid('st-cancel');
    fx.grpc.script(gid, 'TransOutRevert', SECOND_PHASE);
    await register(gid, 'tcc');
    expect(await fx.dtm.post('/abort', { gid, trans_type: 'tcc' })).toEqual(ok);
    await fx.dtm.waitFor(gid, 'failed', 40_000);
    expect(await retriesOf(fx.dtm, gid, '01', 'cancel')).toEqual(SECOND_PHASE_RETRIES);
  });

  it('xa commit', async ({ expect }) => {
    const gid = uniqueGid('st-commit');
    fx.grpc.script(gid, 'TransOutXa', SECOND_PHASE);
    await register(gid, 'xa');
    expect(await fx.dtm.post('/submit', { gid, trans_type: 'xa' })).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed', 40_000);
    expect(await retriesOf(fx.dtm, gid, '01', 'commit')).toEqual(SECOND_PHASE_RETRIES);
  });

  it('xa rollback', async ({ expect }) => {
    const gid = uniqueGid('st-rollback');
    fx.grpc.script(gid, 'TransOutXa', SECOND_PHASE);
    await register(gid, 'xa');
    expect(await fx.dtm.post('/abort', { gid, trans_type: 'xa' })).toEqual(ok);
    await fx.dtm.waitFor(gid, 'failed', 40_000);
    expect(await retriesOf(fx.dtm, gid, '01', 'rollback')).toEqual(SECOND_PHASE_RETRIES);
  });

  it('msg delivery', async ({ expect }) => {
    const gid = uniqueGid('st-msg');
    fx.grpc.script(gid, 'TransIn', SECOND_PHASE);
    const body = {
      gid,
      trans_type: 'msg',
      steps: [{ action: fx.grpc.url('TransIn') }],
      bin_payloads: [b64('m')],
      ...OPTIONS,
    };
    expect(await fx.dtm.post('/submit', body)).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed', 40_000);
    expect(await retriesOf(fx.dtm, gid, '01', 'action')).toEqual(SECOND_PHASE_RETRIES);
  });

  it('msg check-back (ABORTED there is final: see grpc-modes)', async ({ expect }) => {
    const gid = uniqueGid('st-check');
    fx.grpc.script(gid, 'QueryPrepared', TROUBLE);
    const body = {
      gid,
      trans_type: 'msg',
      steps: [{ action: fx.grpc.url('TransIn') }],
      bin_payloads: [b64('m')],
      query_prepared: fx.grpc.url('QueryPrepared'),
      timeout_to_fail: 1,
      ...OPTIONS,
    };
    expect(await fx.dtm.post('/prepare', body)).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed', 40_000);
    expect(await retriesOf(fx.dtm, gid, '00', 'msg')).toEqual(TROUBLE_RETRIES);
    expect(fx.grpc.callsTo(gid, 'TransIn')).toHaveLength(1);
  });
});
