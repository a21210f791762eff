import { buildTimeline, formatTimeline, timelineWithin, type Timeline } from '@dtm-ts/engine';
import type { EventFeed, EventLog } from '@dtm-ts/ports';
import { transactionIds } from './stream-ids';

/** What `npm run replay` was asked for. */
export interface ReplayArgs {
  /** One transaction, whole history. */
  readonly gid?: string;
  /** Every transaction in the log and the archive, in no particular order. */
  readonly all: boolean;
  /** With `all`: only events recorded at or after / at or before these times (epoch ms). */
  readonly since?: number;
  readonly until?: number;
  /** JSON instead of text: the timeline as GET /api/dtmsvr/events answers it (one per line with --all). */
  readonly json: boolean;
}

/** Bad command line: the message says how to call it. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const REPLAY_USAGE = `usage: npm run replay -- --gid <gid> [--json]
       npm run replay -- --all [--since <ISO time>] [--until <ISO time>] [--json]

Prints transactions' histories from the event log: every event with its time, the status it led to,
each branch call with its URL and outcome, and the compensations in the order they ran.
--all goes through the whole log, archive included, in no particular order; --since/--until keep the events recorded within that window
(a transaction with none there is left out).`;

const time = (flag: string, value: string | undefined): number => {
  const ms = value === undefined ? Number.NaN : Date.parse(value);
  if (Number.isNaN(ms)) throw new UsageError(`${flag} needs an ISO-8601 time, like 2025-01-31T12:00:00Z`);
  return ms;
};

export const parseReplayArgs = (argv: readonly string[]): ReplayArgs => {
  let gid: string | undefined;
  let all = false;
  let json = false;
  let since: number | undefined;
  let until: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--gid') {
      gid = argv[++i];
      if (!gid) throw new UsageError('--gid needs a value');
    } else if (arg === '--all') all = true;
    else if (arg === '--json') json = true;
    else if (arg === '--since') since = time('--since', argv[++i]);
    else if (arg === '--until') until = time('--until', argv[++i]);
    else throw new UsageError(`unknown argument ${arg}`);
  }
  if ((gid === undefined) === !all) throw new UsageError('give either --gid <gid> or --all');
  if (gid !== undefined && (since !== undefined || until !== undefined)) {
    throw new UsageError('--since and --until go with --all');
  }
  return { gid, all, json, since, until };
};

/**
 * Replays what `args` asks for from the log (archived transactions included) and writes it out; resolves to
 * how many transactions it printed. With `--all`, transactions come in no particular order, each printed once
 * (its whole stream read), so memory holds only the gids already printed.
 */
export const replay = async (
  deps: { log: EventLog; feed: EventFeed },
  args: ReplayArgs,
  write: (text: string) => void,
  pageSize = 500,
  /** Told of every transaction printed with `--all` (the CLI's progress line). */
  onProgress?: (printed: number) => void,
): Promise<number> => {
  const print = (t: Timeline): void => write(args.json ? `${JSON.stringify(t)}\n` : formatTimeline(t));
  if (args.gid !== undefined) {
    const { events } = await deps.log.read(args.gid);
    if (events.length === 0) throw new UsageError(`no transaction ${args.gid} in the log`);
    print(buildTimeline(args.gid, events));
    return 1;
  }
  const seen = new Set<string>();
  let printed = 0;
  for await (const ids of transactionIds(deps.log, deps.feed, { archived: true, pageSize })) {
    for (const gid of ids) {
      if (seen.has(gid)) continue;
      seen.add(gid);
      const { events } = await deps.log.read(gid);
      const t = timelineWithin(buildTimeline(gid, events), args.since, args.until);
      if (t.events.length === 0) continue;
      print(t);
      printed++;
      onProgress?.(1);
    }
  }
  return printed;
};
