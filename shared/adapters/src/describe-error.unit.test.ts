import { describe, expect, it } from 'vitest';
import { describeError } from './describe-error';

const withCode = (message: string, code: string): Error => Object.assign(new Error(message), { code });

describe('describeError', () => {
  it('when the error is no Error, then it is its string', () => expect(describeError('boom')).toBe('boom'));

  it('when the message names the code already, then the code is not repeated', () =>
    expect(describeError(withCode('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED'))).toBe(
      'connect ECONNREFUSED 127.0.0.1:1',
    ));

  it('when the message lacks the code, then the code follows it', () =>
    expect(describeError(withCode('socket hang up', 'ECONNRESET'))).toBe('socket hang up (ECONNRESET)'));

  it('when the error has a cause, then its message follows', () =>
    expect(describeError(new Error('fetch failed', { cause: new Error('other side closed') }))).toBe(
      'fetch failed: other side closed',
    ));

  it('when an AggregateError has no message, then each of its errors is named', () =>
    expect(
      describeError(new AggregateError([withCode('connect ECONNREFUSED ::1:1', 'ECONNREFUSED'), new Error('x')], '')),
    ).toBe('connect ECONNREFUSED ::1:1; x'));

  it('when the message is empty, then the name stands for it', () => {
    const err = new Error('');
    err.name = 'TimeoutError';
    expect(describeError(err)).toBe('TimeoutError');
  });
});
