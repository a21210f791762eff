import { NO_STREAM, VersionConflict, type StreamLog } from '@dtm-ts/ports';

/**
 * Decides a command against one stream and appends the result with the expected revision,
 * re-reading and re-deciding when someone else appended first (DESIGN invariant 1).
 */
export const executeOnStream = async <E, S, C>(
  log: StreamLog<E>,
  id: string,
  fold: (events: readonly E[]) => S,
  decide: (command: C, state: S) => E[],
  command: C,
): Promise<{ state: S; events: E[]; version: number }> => {
  for (let attempt = 0; ; attempt++) {
    const { events, version } = await log.read(id);
    const state = fold(events);
    const decided = decide(command, state);
    if (decided.length === 0) return { state, events: [], version };
    try {
      const v = await log.append(id, decided, version === NO_STREAM ? NO_STREAM : version);
      return { state: fold([...events, ...decided]), events: decided, version: v };
    } catch (err) {
      if (!(err instanceof VersionConflict) || attempt >= 100) throw err;
    }
  }
};
