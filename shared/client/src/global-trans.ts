import { callTm } from './http';

/** Why a transaction function failed, as the `rollback_reason` sent with the abort. */
const reasonOf = (err: unknown): string => (err instanceof Error ? err.message : String(err)).slice(0, 1024);

/** The three TM calls of a TCC or XA transaction, over whichever protocol the AP speaks to the TM. */
export interface TwoPhaseCalls {
  prepare(): Promise<unknown>;
  submit(): Promise<unknown>;
  abort(rollbackReason: string): Promise<unknown>;
}

/**
 * The shared shape of TCC and XA global transactions (DTM's `XaHandleGlobalTrans`): prepare; run `body`; submit
 * when it resolves, abort (with the error as `rollback_reason`) when it rejects. The body's error is rethrown even
 * if the abort fails: the TM then rolls the transaction back at its timeout.
 */
export const runTwoPhase = async <T>(tm: TwoPhaseCalls, body: () => Promise<T>): Promise<T> => {
  await tm.prepare();
  let result: T;
  try {
    result = await body();
  } catch (err) {
    await tm.abort(reasonOf(err)).catch(() => {
      // The body's error is the one worth reporting; an unaborted transaction times out into a rollback.
    });
    throw err;
  }
  await tm.submit();
  return result;
};

/** {@link runTwoPhase} against the TM's HTTP API. */
export const runGlobalTransaction = <T>(
  tm: { dtm: string; timeoutMs: number; header: () => Record<string, unknown> },
  body: () => Promise<T>,
): Promise<T> =>
  runTwoPhase(
    {
      prepare: () => callTm(tm.dtm, 'prepare', tm.header(), tm.timeoutMs),
      submit: () => callTm(tm.dtm, 'submit', tm.header(), tm.timeoutMs),
      abort: (reason) => callTm(tm.dtm, 'abort', { ...tm.header(), rollback_reason: reason }, tm.timeoutMs),
    },
    body,
  );
