import { afterEach } from 'vitest';
import { stopAll, type RoleProcess } from './processes';

/** What one crash test started: set (or pushed to) by the test, ended by {@link killedAfterEach}. */
export interface CrashTestOwned<P extends { close(): Promise<void> }> {
  /** Role processes; SIGKILLed. */
  readonly procs: RoleProcess[];
  /** The branch peer; closed. */
  peer: P | undefined;
  /** The Redis (one server or a cluster); killed. */
  redis: { kill(): Promise<void> } | undefined;
}

/**
 * Ends after each test of the file whatever it started, even when it failed: its roles SIGKILLed, then its peer
 * closed, then its Redis killed, as a crash would leave them.
 */
export const killedAfterEach = <P extends { close(): Promise<void> }>(): CrashTestOwned<P> => {
  const owned: CrashTestOwned<P> = { procs: [], peer: undefined, redis: undefined };
  afterEach(async () => {
    await stopAll(owned.procs.splice(0), 'SIGKILL');
    await owned.peer?.close();
    owned.peer = undefined;
    await owned.redis?.kill();
    owned.redis = undefined;
  });
  return owned;
};
