/**
 * Names the cause of a transport failure in one line, for a branch's `detail` (what `/query` and the
 * timeline show): the message, the system error code when the message lacks it, and the message of
 * its cause, e.g. `connect ECONNREFUSED 127.0.0.1:1234`. A happy-eyeballs connect (several
 * addresses) fails with an AggregateError whose message is empty: each of its errors, joined by `; `.
 */
export const describeError = (err: unknown): string => {
  if (!(err instanceof Error)) return String(err);
  if (err instanceof AggregateError && err.message === '' && err.errors.length > 0) {
    return err.errors.map(describeError).join('; ');
  }
  const code = (err as { code?: unknown }).code;
  let detail = err.message || err.name;
  if (typeof code === 'string' && !detail.includes(code)) detail = `${detail} (${code})`;
  if (err.cause instanceof Error && err.cause.message && !detail.includes(err.cause.message)) {
    detail = `${detail}: ${err.cause.message}`;
  }
  return detail;
};
