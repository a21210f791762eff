import { describe, expect, it } from 'vitest';
import { classifyHttp } from './outcome';

const SUCCESS = '{"dtm_result":"SUCCESS"}';
const FAILURE = '{"dtm_result":"FAILURE"}';
const ONGOING = '{"dtm_result":"ONGOING"}';

describe('classifyHttp (reference §3.2, checks in order)', () => {
  it('when the RM answers 200, then the branch succeeded', () => {
    expect(classifyHttp(200, SUCCESS)).toEqual({ kind: 'success' });
    expect(classifyHttp(200, '')).toEqual({ kind: 'success' });
  });

  it('when the RM answers another 2xx, then it is an error to retry (only 200 is success)', () => {
    expect(classifyHttp(201, SUCCESS)).toMatchObject({ kind: 'error', detail: expect.stringContaining('HTTP 201') });
    expect(classifyHttp(204, '')).toMatchObject({ kind: 'error', detail: expect.stringContaining('HTTP 204') });
  });

  it('when the RM answers 409, then the branch failed, whatever the body', () => {
    expect(classifyHttp(409, FAILURE)).toEqual({ kind: 'failure', detail: FAILURE });
    expect(classifyHttp(409, '')).toMatchObject({ kind: 'failure' });
  });

  it('when the RM answers 425, then the branch is ongoing, whatever the body', () => {
    expect(classifyHttp(425, ONGOING)).toEqual({ kind: 'ongoing', detail: ONGOING });
    expect(classifyHttp(425, '')).toEqual({ kind: 'ongoing', detail: 'HTTP 425' });
  });

  it('when the RM answers 500, then it is an error carrying status and body', () => {
    expect(classifyHttp(500, '{"message":"boom"}')).toEqual({ kind: 'error', detail: 'HTTP 500: {"message":"boom"}' });
  });

  it('when a 500 body mentions FAILURE, then the FAILURE check wins over the status check', () => {
    expect(classifyHttp(500, FAILURE)).toMatchObject({ kind: 'failure' });
  });

  it('when a 200 body says ONGOING or FAILURE, then the body wins (legacy style)', () => {
    expect(classifyHttp(200, ONGOING)).toMatchObject({ kind: 'ongoing' });
    expect(classifyHttp(200, FAILURE)).toMatchObject({ kind: 'failure' });
  });

  it('when a body mentions both, then ONGOING is checked first', () => {
    expect(classifyHttp(200, 'FAILURE then ONGOING')).toMatchObject({ kind: 'ongoing' });
    expect(classifyHttp(409, ONGOING)).toMatchObject({ kind: 'ongoing' });
  });

  it('when the body is long, then the detail is cut to 512 characters', () => {
    const { detail } = classifyHttp(409, 'x'.repeat(2000)) as { detail: string };
    expect(detail).toBe(`${'x'.repeat(512)}…`);
  });
});
