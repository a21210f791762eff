/** Where a progress line goes: a terminal stream (stderr in the CLIs). */
export interface ProgressSink {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

/** Counts work done and, on a terminal only, keeps one line up to date with the count and the rate. */
export interface Progress {
  /** Adds `n` items done. */
  add(n: number): void;
  /** Writes the final figures and ends the line (no-op off a terminal). */
  done(): void;
}

/**
 * A progress line for long CLI work (`read-model:rebuild`, `replay --all`): `<label>: <n> <unit> (<rate>/s)`,
 * redrawn at most every `everyMs`, only when `sink` is a terminal, so piped output and logs stay clean.
 */
export const progressLine = (
  sink: ProgressSink,
  label: string,
  unit: string,
  now: () => number = () => Date.now(),
  everyMs = 250,
): Progress => {
  const started = now();
  let count = 0;
  let drawn = -Infinity;
  const draw = (final: boolean): void => {
    const t = now();
    if (!sink.isTTY || (!final && t - drawn < everyMs)) return;
    drawn = t;
    const rate = Math.round(count / Math.max((t - started) / 1000, 0.001));
    sink.write(`\r${label}: ${count} ${unit} (${rate}/s)${final ? '\n' : ''}`);
  };
  return {
    add(n) {
      count += n;
      draw(false);
    },
    done() {
      draw(true);
    },
  };
};
