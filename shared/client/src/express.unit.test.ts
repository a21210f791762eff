import type { Request, Response } from 'express';
import { describe, expect, it } from 'vitest';
import { DtmBadRequest, DtmFailure, DtmOngoing } from './errors';
import { branchInfo, replyError, rmHandler } from './express';

/** Just enough of an express Response to see what was answered. */
const fakeRes = () => {
  const sent: { status?: number; body?: unknown } = {};
  const res = {
    headersSent: false,
    status(code: number) {
      sent.status = code;
      return res;
    },
    json(body: unknown) {
      sent.body = body;
      res.headersSent = true;
      return res;
    },
  };
  return { res: res as unknown as Response, sent };
};

describe('RM answers', () => {
  it.each([
    [new DtmFailure('short of money'), 409, { dtm_result: 'FAILURE', message: 'short of money' }],
    [new DtmOngoing('later'), 425, { dtm_result: 'ONGOING', message: 'later' }],
    [new DtmBadRequest('no gid'), 400, { message: 'no gid' }],
    // A plain error mentioning FAILURE must stay a retryable 500, not read as a business failure.
    [new Error('upstream said FAILURE / ONGOING'), 500, { message: 'upstream said Failure / Ongoing' }],
  ])('when a handler throws %o, then it answers %i', (err, status, body) => {
    const { res, sent } = fakeRes();
    replyError(res, err);
    expect(sent).toEqual({ status, body });
  });

  it('when a wrapped handler resolves, then it answers 200 SUCCESS', async () => {
    const { res, sent } = fakeRes();
    rmHandler(async () => undefined)({} as Request, res, () => undefined);
    await new Promise((r) => setImmediate(r));
    expect(sent).toEqual({ status: 200, body: { dtm_result: 'SUCCESS' } });
  });

  it('when a branch request is parsed, then gid, trans_type, branch_id and op are required', () => {
    expect(branchInfo({ gid: 'g', trans_type: 'saga', branch_id: '01', op: 'action' })).toEqual({
      gid: 'g',
      transType: 'saga',
      branchId: '01',
      op: 'action',
      dtm: '',
      phase2Url: '',
    });
    expect(() => branchInfo({ gid: 'g' })).toThrow(DtmBadRequest);
  });
});
