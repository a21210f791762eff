/** Epoch milliseconds as events carry them: an ISO-8601 string (the log is read by people during audits). */
export const iso = (ms: number): string => new Date(ms).toISOString();
