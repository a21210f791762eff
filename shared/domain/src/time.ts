/**
 * The last conversion each way: a busy TM stamps and folds many events within one millisecond, and a
 * conversion costs more than the rest of folding an event. Invisible to callers (same value for the same input).
 */
let lastMs = NaN;
let lastIso = '';

/** Epoch milliseconds as events carry them: an ISO-8601 string (the log is read by people during audits). */
export const iso = (ms: number): string => {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastIso;
};

let parsedIso = '';
let parsedMs = NaN;

/** An event's ISO-8601 time as epoch milliseconds. */
export const epochMs = (at: string): number => {
  if (at !== parsedIso) {
    parsedMs = Date.parse(at);
    parsedIso = at;
  }
  return parsedMs;
};
