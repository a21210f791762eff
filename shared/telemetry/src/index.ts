import { pino, type Logger } from 'pino';
import { currentTraceparent } from './tracing';

export type { Logger };
export * from './tracing';
export * from './metrics';

/** Span/log attribute names, in one table (house style §7). */
export const Attr = {
  gid: 'dtm.gid',
  branchId: 'dtm.branch_id',
  op: 'dtm.op',
  outcome: 'dtm.outcome',
  status: 'dtm.status',
} as const;

/**
 * JSON logs on stdout, with the trace id of the active span. Branch payloads and headers are never
 * logged: they may carry secrets.
 */
export const createLogger = (level: string, name: string): Logger =>
  pino({
    level,
    name,
    base: { service: name },
    mixin: () => {
      const tp = currentTraceparent();
      return tp ? { trace_id: tp.split('-')[1] } : {};
    },
  });
