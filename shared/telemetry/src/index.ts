import { pino, type Logger } from 'pino';

export type { Logger };

/** Span/log attribute names, in one table (house style §7). */
export const Attr = { gid: 'dtm.gid', branchId: 'dtm.branch_id', op: 'dtm.op', attempt: 'dtm.job.attempt' } as const;

/** JSON logs on stdout. Branch payloads and headers are never logged: they may carry secrets. */
export const createLogger = (level: string, name: string): Logger => pino({ level, name, base: { service: name } });
