import { callTm } from './http';

/** Why a transaction function failed, as the `rollback_reason` sent with the abort. */
const reasonOf = (err: unknown): string => (err instanceof Error ? err.message : String(err)).slice(0, 1024);

/**
 * The shared shape of TCC and XA global transactions (DTM's `XaHandleGlobalTrans`): prepare; run `body`; submit
 * when it resolves, abort (with the error as `rollback_reason`) when it rejects. The body's error is rethrown even
 * if the abort fails: the TM then rolls the transaction back at its timeout.
 */
export const runGlobalTransaction = async <T>(
  tm: { dtm: string; timeoutMs: number; header: () => Record<string, unknown> },
  body: () => Promise<T>,
): Promise<T> => {
  await callTm(tm.dtm, 'prepare', tm.header(), tm.timeoutMs);
  let result: T;
  try {
    result = await body();
  } catch (err) {
    await callTm(tm.dtm, 'abort', { ...tm.header(), rollback_reason: reasonOf(err) }, tm.timeoutMs).catch(() => {
      // The body's error is the one worth reporting; an unaborted transaction times out into a rollback.
    });
    throw err;
  }
  await callTm(tm.dtm, 'submit', tm.header(), tm.timeoutMs);
  return result;
};
