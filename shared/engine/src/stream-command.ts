import type { StreamLog } from '@dtm-ts/ports';
import { appendDecided } from './append-decided';

/**
 * Decides a command against one stream and appends the result with the expected revision,
 * re-reading and re-deciding when someone else appended first (DESIGN invariant 1).
 */
export const executeOnStream = async <E, S, C>(
  log: StreamLog<E>,
  id: string,
  fold: (events: readonly E[], from?: S) => S,
  decide: (command: C, state: S) => E[],
  command: C,
): Promise<{ state: S; events: readonly E[]; version: number }> => {
  const done = await appendDecided(log, id, fold, (state) => {
    const events = decide(command, state);
    return { events, state: fold(events, state) };
  });
  return { state: done.state, events: done.events, version: done.version };
};
