import { VersionConflict, type StreamLog } from '@dtm-ts/ports';

/** Conflicts in a row one decision survives before it gives up: far more than real contention causes. */
export const MAX_CONFLICTS = 100;

/** A stream as someone last read it: its folded state and the revision of its last event (NO_STREAM: none). */
export interface StreamAt<S> {
  readonly state: S;
  readonly version: number;
}

/** Events to append, and the state they lead to. */
export interface Decision<E, S> {
  readonly events: readonly E[];
  readonly state: S;
}

/** What {@link appendDecided} did: the stream after it, and what it appended (nothing when the decision was empty). */
export interface Appended<E, S> extends StreamAt<S> {
  readonly events: readonly E[];
  /** Conflicts it went through before the append (or the empty decision) stuck; 0 when the first try did. */
  readonly conflicts: number;
}

export interface AppendDecidedOptions<E, S> {
  /** The stream as the caller already holds it, which saves the first read. */
  readonly from?: StreamAt<S>;
  /** Reads the stream in place of `log.read` + `fold` (say, from snapshots). */
  readonly read?: () => Promise<StreamAt<S>>;
  /** Appends in place of `log.append`, with the same contract (to time it, or to tell observers). */
  readonly append?: (events: readonly E[], expected: number, before: S, after: S) => Promise<number>;
}

/**
 * Decides against the stream, appends the decision with the expected revision, and on a conflict re-reads and
 * decides again (DESIGN invariant 1: never overwrite). `decide` returns null (or no events) when nothing is to be
 * appended. Gives up after {@link MAX_CONFLICTS} conflicts in a row, rethrowing the last one; other errors, and
 * rejections thrown by `decide`, propagate untouched.
 */
export const appendDecided = async <E, S>(
  log: StreamLog<E>,
  id: string,
  fold: (events: readonly E[]) => S,
  decide: (state: S) => Decision<E, S> | null,
  opts: AppendDecidedOptions<E, S> = {},
): Promise<Appended<E, S>> => {
  const read =
    opts.read ??
    (async (): Promise<StreamAt<S>> => {
      const { events, version } = await log.read(id);
      return { state: fold(events), version };
    });
  let at = opts.from ?? (await read());
  for (let conflicts = 0; ; conflicts++) {
    const decision = decide(at.state);
    if (!decision || decision.events.length === 0) return { ...at, events: [], conflicts };
    try {
      const version = opts.append
        ? await opts.append(decision.events, at.version, at.state, decision.state)
        : await log.append(id, decision.events, at.version);
      return { state: decision.state, version, events: decision.events, conflicts };
    } catch (err) {
      if (!(err instanceof VersionConflict) || conflicts >= MAX_CONFLICTS) throw err;
      at = await read();
    }
  }
};
