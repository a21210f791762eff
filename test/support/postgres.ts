import type pg from 'pg';

/** Why the PostgreSQL XA tests cannot run on this server, and the fix. */
export const PREPARED_TRANSACTIONS_OFF =
  'PostgreSQL has max_prepared_transactions = 0, so PREPARE TRANSACTION (XA) is disabled. Run ' +
  "`psql -h 127.0.0.1 -U postgres -c 'ALTER SYSTEM SET max_prepared_transactions = 64'` and restart PostgreSQL " +
  '(.ci/run does both). The XA tests fail rather than skip, so that no run passes without them.';

/** Whether the server behind `pool` can prepare transactions (its default, max_prepared_transactions = 0, cannot). */
export const preparedTransactionsOn = async (pool: pg.Pool): Promise<boolean> =>
  Number(
    (await pool.query<{ max_prepared_transactions: string }>('SHOW max_prepared_transactions')).rows[0]!
      .max_prepared_transactions,
  ) > 0;

/** Fails the test, naming the fix, when prepared transactions are off: an XA test never skips silently. */
export const requirePreparedTransactions = (on: boolean): void => {
  if (!on) throw new Error(PREPARED_TRANSACTIONS_OFF);
};
