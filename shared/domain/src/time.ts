/**
 * A busy TM stamps and folds many events per second, and `toISOString`/`Date.parse` cost more than the rest of
 * folding an event: the stamp reuses its second's prefix, and the last parse is kept. Invisible to callers (the
 * same value for the same input).
 */
let prefixSecond = NaN;
/** `YYYY-MM-DDTHH:MM:SS.` of `prefixSecond`. */
let prefix = '';

/** Epoch milliseconds as events carry them: an ISO-8601 string (the log is read by people during audits). */
export const iso = (time: number): string => {
  // A Date keeps whole milliseconds (truncated toward zero).
  const ms = Math.trunc(time);
  const second = Math.floor(ms / 1000);
  if (second !== prefixSecond) {
    // Throws RangeError for a time outside the Date range, as toISOString does.
    const full = new Date(ms).toISOString();
    // Years beyond 9999 have a longer, signed form: leave those to toISOString.
    if (full.length !== 24) return full;
    prefix = full.slice(0, 20);
    prefixSecond = second;
  }
  const milli = ms - second * 1000;
  return `${prefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
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
