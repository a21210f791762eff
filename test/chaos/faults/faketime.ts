import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A wall-clock offset for child processes; see {@link skewedClock}. */
export interface SkewedClock {
  /** Merge into the child's environment (it sets LD_PRELOAD: a child's own LD_PRELOAD would be replaced). */
  readonly env: Record<string, string>;
  /** The offset in force, in seconds. */
  readonly offsetS: number;
  /**
   * Jumps the children's clocks to `offsetS` from real time; resolves once every running child reads the new
   * offset on its next clock call (about 2.3 s: the children re-read the offset file at most every second).
   */
  set(offsetS: number): Promise<void>;
  /** Removes the offset file; for the end of a test, after its children exited. */
  cleanup(): Promise<void>;
}

/**
 * How often libfaketime re-reads the offset file, in seconds. Re-reading it on every call (FAKETIME_NO_CACHE=1)
 * costs an open and a read per Date.now(): 14 µs instead of 0.2 µs here, which would slow a worker down far
 * more than any skew.
 */
const CACHE_S = 1;
/**
 * How long `set` waits for every child to have read the new offset. libfaketime compares whole seconds
 * (the cache expires once the second count has moved past the duration), so a re-read comes up to
 * CACHE_S + 1 s after a write; measured here: 0.6 to 1.9 s.
 */
const SET_WAIT_MS = (CACHE_S + 1) * 1_000 + 300;

/** Where Debian/Ubuntu's `faketime` package puts the library, for this machine's architecture. */
const findLibfaketime = (): string => {
  const fromEnv = process.env['LIBFAKETIME'];
  if (fromEnv) return fromEnv;
  const candidates = ['/usr/lib/faketime/libfaketime.so.1', '/usr/local/lib/faketime/libfaketime.so.1'];
  for (const dir of existsSync('/usr/lib') ? readdirSync('/usr/lib') : []) {
    if (dir.endsWith('-linux-gnu')) candidates.unshift(`/usr/lib/${dir}/faketime/libfaketime.so.1`);
  }
  const found = candidates.find((p) => existsSync(p));
  if (!found)
    throw new Error(
      `libfaketime not found (apt-get install -y faketime, or set LIBFAKETIME); looked in ${candidates.join(', ')}`,
    );
  return found;
};

/** libfaketime's relative offset syntax: "+30" or "-2.5" seconds from real time. */
const spec = (offsetS: number): string => {
  if (!Number.isFinite(offsetS)) throw new Error(`a clock offset must be a finite number of seconds, got ${offsetS}`);
  return `${offsetS < 0 ? '-' : '+'}${Math.abs(offsetS)}\n`;
};

const dirs = new Set<string>();
let exitHookInstalled = false;
const installExitHook = (): void => {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
};

/**
 * A skewed wall clock for child processes, through libfaketime (LD_PRELOAD): start a child with `env` merged into
 * its environment and its Date.now(), new Date() and gettimeofday run `offsetS` seconds off real time; `set` moves
 * the offset of every such child mid-run, as an NTP step would.
 *
 * Only the wall clock is faked (FAKETIME_DONT_FAKE_MONOTONIC=1), as on a real machine whose clock is wrong or
 * stepped: CLOCK_MONOTONIC, which libuv's timers and performance.now() run on, goes on at its own pace. Faking it
 * as well would make every setTimeout jump with the offset (a 5 s timer fired after 1.5 s on a +30 s step, a 2.5 s
 * one after 5.5 s on a -5 s step, measured here), a fault no real clock skew produces, and one that would shorten
 * or stretch leases and request timeouts by the offset instead of testing what the skewed timestamps do.
 *
 * Redis's TIME, and any other process's clock, are not affected: that is the point of the test.
 */
export const skewedClock = async (initialOffsetS: number): Promise<SkewedClock> => {
  installExitHook();
  const lib = findLibfaketime();
  const dir = mkdtempSync(join(tmpdir(), 'dtm-faketime-'));
  dirs.add(dir);
  const file = join(dir, 'offset');
  // Written aside then renamed: a child re-reading the file never sees it empty or half written.
  const write = (offsetS: number): void => {
    const next = `${file}.next`;
    writeFileSync(next, spec(offsetS));
    renameSync(next, file);
  };
  write(initialOffsetS);
  let offset = initialOffsetS;
  return {
    env: {
      LD_PRELOAD: lib,
      FAKETIME_TIMESTAMP_FILE: file,
      FAKETIME_CACHE_DURATION: String(CACHE_S),
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    },
    get offsetS() {
      return offset;
    },
    async set(offsetS) {
      write(offsetS);
      offset = offsetS;
      await new Promise((resolve) => setTimeout(resolve, SET_WAIT_MS));
    },
    async cleanup() {
      dirs.delete(dir);
      rmSync(dir, { recursive: true, force: true });
      await Promise.resolve();
    },
  };
};
