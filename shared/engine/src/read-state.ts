import { fold, type GlobalTransaction } from '@dtm-ts/domain';
import type { EventLog, StateLog } from '@dtm-ts/ports';

/**
 * The folded state of `gid` and its version: from the log's snapshots where it keeps them (a pass then costs
 * the same after 100,000 retries as after one), else by folding the whole stream.
 */
export const readState = async (
  log: EventLog | (EventLog & StateLog),
  gid: string,
): Promise<{ state: GlobalTransaction; version: number }> => {
  if ('readState' in log) return log.readState(gid);
  const { events, version } = await log.read(gid);
  return { state: fold(events), version };
};
