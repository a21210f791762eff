import { describe, expect, it } from 'vitest';
import { requirePreparedTransactions } from './postgres';

describe('requirePreparedTransactions', () => {
  it('when prepared transactions are off, then the test fails naming the setting and the fix', () =>
    expect(() => requirePreparedTransactions(false)).toThrow(/max_prepared_transactions = 0.*ALTER SYSTEM SET/s));
  it('when they are on, then the test goes on', () => expect(() => requirePreparedTransactions(true)).not.toThrow());
});
