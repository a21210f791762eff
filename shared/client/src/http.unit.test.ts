import { describe, expect, it } from 'vitest';
import { DtmFailure, DtmOngoing, DtmTransportError } from './errors';
import { errorOfAnswer } from './http';

describe('errorOfAnswer (reference §3.2, in order)', () => {
  it.each([
    [200, '{"dtm_result":"SUCCESS"}', undefined],
    [425, '', DtmOngoing],
    [200, '{"dtm_result":"ONGOING"}', DtmOngoing],
    [409, '', DtmFailure],
    [200, '{"dtm_result":"FAILURE"}', DtmFailure],
    [500, 'something FAILURE', DtmFailure],
    [500, 'ONGOING and FAILURE', DtmOngoing],
    [500, 'boom', DtmTransportError],
    [201, '', DtmTransportError],
    [404, '{"message":"no such gid"}', DtmTransportError],
  ])('when the answer is %i %j, then %o', (status, body, type) => {
    const err = errorOfAnswer(status, body, 'call');
    if (type === undefined) expect(err).toBeUndefined();
    else {
      expect(err).toBeInstanceOf(type);
      expect(err).toMatchObject({ status, body });
    }
  });
});
