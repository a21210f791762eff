import { describe, expect, it } from 'vitest';
import { classifyGrpc, classifyHttp, classifyJsonRpc, grpcCodeName } from './outcome';

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

describe('classifyGrpc (DTM GrpcError2DtmError, reference §3.2)', () => {
  it('when the status is OK, then the branch succeeded', () => {
    expect(classifyGrpc(0, '')).toEqual({ kind: 'success' });
  });

  it('when the status is ABORTED, then the branch failed, with the message as detail', () => {
    expect(classifyGrpc(10, 'insufficient balance')).toEqual({ kind: 'failure', detail: 'insufficient balance' });
    expect(classifyGrpc(10, '')).toEqual({ kind: 'failure', detail: 'ABORTED' });
  });

  it('when the status is ABORTED with the message exactly ONGOING (clients before DTM 1.10), then it is ongoing', () => {
    expect(classifyGrpc(10, 'ONGOING')).toEqual({ kind: 'ongoing', detail: 'ONGOING' });
    expect(classifyGrpc(10, 'still ONGOING')).toMatchObject({ kind: 'failure' });
  });

  it('when the status is FAILED_PRECONDITION, then the branch is ongoing', () => {
    expect(classifyGrpc(9, 'not yet')).toEqual({ kind: 'ongoing', detail: 'not yet' });
  });

  it('when the status is anything else, then it is an error to retry, naming the code', () => {
    expect(classifyGrpc(14, 'No connection established')).toEqual({
      kind: 'error',
      detail: 'gRPC UNAVAILABLE: No connection established',
    });
    expect(classifyGrpc(13, 'boom')).toEqual({ kind: 'error', detail: 'gRPC INTERNAL: boom' });
    expect(classifyGrpc(4, 'Deadline exceeded')).toMatchObject({
      kind: 'error',
      detail: expect.stringContaining('DEADLINE_EXCEEDED'),
    });
    expect(classifyGrpc(2, '')).toMatchObject({ kind: 'error', detail: 'gRPC UNKNOWN: ' });
    expect(classifyGrpc(99, 'x')).toMatchObject({ kind: 'error', detail: 'gRPC code 99: x' });
    expect(grpcCodeName(12)).toBe('UNIMPLEMENTED');
  });
});

describe('classifyJsonRpc (HTTP rules, then the JSON-RPC error codes)', () => {
  const answer = (error: unknown) => JSON.stringify({ jsonrpc: '2.0', id: '1', result: null, error });

  it('when the answer has no error, then the branch succeeded', () => {
    expect(classifyJsonRpc(200, answer(null))).toEqual({ kind: 'success' });
    expect(classifyJsonRpc(200, '{"jsonrpc":"2.0","id":"1","result":{}}')).toEqual({ kind: 'success' });
  });

  it('when the error code is -32901, then the branch failed; -32902, then it is ongoing', () => {
    expect(classifyJsonRpc(200, answer({ code: -32901, message: 'no' }))).toMatchObject({ kind: 'failure' });
    expect(classifyJsonRpc(200, answer({ code: -32902, message: 'later' }))).toMatchObject({ kind: 'ongoing' });
  });

  it('when the error has another code, or the answer is not a JSON-RPC object, then it is an error to retry', () => {
    expect(classifyJsonRpc(200, answer({ code: -32603, message: 'internal' }))).toMatchObject({
      kind: 'error',
      detail: expect.stringContaining('JSON-RPC error -32603'),
    });
    expect(classifyJsonRpc(200, 'ok')).toMatchObject({
      kind: 'error',
      detail: expect.stringContaining('not a JSON-RPC answer'),
    });
    expect(classifyJsonRpc(200, '[1]')).toMatchObject({ kind: 'error' });
  });

  it('when the HTTP status says otherwise, then the HTTP rules decide first', () => {
    expect(classifyJsonRpc(500, answer(null))).toMatchObject({
      kind: 'error',
      detail: expect.stringContaining('HTTP 500'),
    });
    expect(classifyJsonRpc(409, '')).toMatchObject({ kind: 'failure' });
    expect(classifyJsonRpc(425, '')).toMatchObject({ kind: 'ongoing' });
  });
});
