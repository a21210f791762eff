import { readFileSync } from 'node:fs';
import type { RedisClient } from './client';
import type { Gid } from '@dtm-ts/domain';
import { NO_STREAM, VersionConflict } from '@dtm-ts/ports';

/** Read once at module load: a missing file fails at startup, not on the first append. */
const lua = (file: string): string => readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8');

const APPEND = { name: 'dtmAppend7', numberOfKeys: 7, lua: lua('append-7.lua') } as const;
const PROJECT = { name: 'dtmProject4', numberOfKeys: 4, lua: lua('project-4.lua') } as const;
const READ_STATE = { name: 'dtmReadState2', numberOfKeys: 2, lua: lua('read-state-2.lua') } as const;
const SNAPSHOT = { name: 'dtmSnapshot2', numberOfKeys: 2, lua: lua('snapshot-2.lua') } as const;
const ARCHIVE_DROP = { name: 'dtmArchiveDrop5', numberOfKeys: 5, lua: lua('archive-drop-5.lua') } as const;

type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;

/**
 * The client's function for a script, defining it on first use. ioredis then sends EVALSHA and falls back to
 * EVAL when the server lost its script cache (after a restart, say).
 */
const scriptOf = (redis: RedisClient, script: { name: string; numberOfKeys: number; lua: string }): ScriptFn => {
  const client = redis as unknown as Record<string, unknown>;
  if (typeof client[script.name] !== 'function') {
    redis.defineCommand(script.name, { numberOfKeys: script.numberOfKeys, lua: script.lua });
  }
  const fn = client[script.name] as ScriptFn;
  return (...args) => fn.apply(redis, args);
};

/** A script answered something its header does not list: a bug, or a script of another version. */
export class UnexpectedScriptReply extends Error {
  override readonly name = 'UnexpectedScriptReply';
  constructor(
    readonly script: string,
    readonly reply: unknown,
  ) {
    super(`script ${script} replied ${JSON.stringify(reply)}`);
  }
}

/** A new stream would reuse the gid of a transaction that was just archived: re-read it (from the archive). */
export class StreamArchived extends Error {
  override readonly name = 'StreamArchived';
  constructor(readonly gid: Gid) {
    super(`stream of '${gid}' was archived`);
  }
}

/** The read-model row an append writes with itself (append-7.lua's 'row' mode). */
export interface AppendRow {
  readonly summary: string;
  readonly indexMember: string;
  /** Epoch ms, or null when finished. */
  readonly wakeAt: number | null;
  /** Epoch ms after which a finished transaction leaves the read model; null: kept. */
  readonly expireAt: number | null;
  /** Record the expiry in the archive-due set too (the log archives finished streams). */
  readonly archive: boolean;
  /** Drop the gid's pass lease (the transaction finished under it). */
  readonly endLease: boolean;
  /** Take the gid's pass lease with this token and TTL (ms): the append starts the stream (see Projection). */
  readonly takeLease: { readonly token: string; readonly ttlMs: number } | undefined;
}

/** What a stream append needs, as append-7.lua takes it. */
export interface AppendArgs {
  readonly keys: {
    readonly streamKey: string;
    readonly feedKey: string;
    readonly readModelKey: string;
    readonly indexKey: string;
    readonly wakeKey: string;
    readonly archiveDueKey: string;
    readonly leaseKey: string;
  };
  readonly gid: Gid;
  readonly expected: number;
  readonly events: readonly string[];
  /** What records the append: a feed entry, the read-model row itself, or nothing yet (see append-7.lua). */
  readonly record: 'feed' | AppendRow | 'none';
}

/** What a read-model write needs, as project-4.lua takes it. */
export interface ProjectArgs {
  readonly readModelKey: string;
  readonly indexKey: string;
  readonly wakeKey: string;
  readonly archiveDueKey: string;
  /** Record the expiry in the archive-due set too (the log is in Redis and archives finished streams). */
  readonly archive?: boolean;
  readonly gid: Gid;
  readonly version: number;
  readonly summary: string;
  readonly indexMember: string;
  /** Epoch ms, or null when finished. */
  readonly wakeAt: number | null;
  /** Epoch ms after which a finished transaction leaves the read model; null: kept. */
  readonly expireAt?: number | null;
}

/** A stream read from its snapshot on, as read-state-2.lua answers. */
export interface StateRead {
  /** The snapshot: its encoding format, the revision it folds up to, the state JSON; null when none. */
  readonly snapshot: { readonly format: string; readonly version: number; readonly state: string } | null;
  /** Events in the stream (its version + 1). */
  readonly length: number;
  /** The events after the snapshot (all of them without one), as JSON. */
  readonly tail: string[];
}

/** The adapters' Lua scripts on one client, with their return codes turned into values and typed errors. */
export interface RedisScripts {
  /**
   * Resolves to the revision of the last event; rejects with VersionConflict when the stream moved, or
   * StreamArchived when a new stream would reuse an archived gid.
   */
  append(args: AppendArgs): Promise<number>;
  /** Resolves to true when written, false when a same or newer version was already stored. */
  project(args: ProjectArgs): Promise<boolean>;
  /** The snapshot of a stream and the events after it. */
  readState(streamKey: string, snapshotKey: string): Promise<StateRead>;
  /** Stores a snapshot unless a newer one is stored or the stream is shorter; true when stored. */
  snapshot(streamKey: string, snapshotKey: string, format: string, version: number, state: string): Promise<boolean>;
  /**
   * Drops an archived stream (and its snapshot, read-model row and archive-due entry) if it still holds `count`
   * events, and sets the archived marker; false when the stream changed.
   */
  archiveDrop(
    keys: { streamKey: string; snapshotKey: string; archiveDueKey: string; leaseKey: string; readModelKey: string },
    count: number,
    gid: Gid,
    markerTtlMs: number,
  ): Promise<boolean>;
}

/** append-7.lua's ARGV[9]: '1' drops the pass lease, `<ttl ms> <token>` takes it, '0' leaves it. */
const leaseArg = (row: AppendRow): string => {
  if (row.endLease) return '1';
  return row.takeLease ? `${Math.max(1, Math.trunc(row.takeLease.ttlMs))} ${row.takeLease.token}` : '0';
};

/** Turns append-7.lua's reply into the last revision, or throws what its negative code means. */
export const appendResult = (args: Pick<AppendArgs, 'gid' | 'expected'>, reply: unknown): number => {
  if (typeof reply === 'number' && reply >= NO_STREAM) return reply;
  if (Array.isArray(reply) && reply[0] === -1 && typeof reply[1] === 'number') {
    throw new VersionConflict(args.gid, args.expected, reply[1]);
  }
  if (Array.isArray(reply) && reply[0] === -2 && reply.length === 1) throw new StreamArchived(args.gid);
  throw new UnexpectedScriptReply(APPEND.name, reply);
};

/** Turns project-4.lua's reply into whether it wrote. */
export const projectResult = (reply: unknown): boolean => {
  if (reply === 1) return true;
  if (reply === 0) return false;
  throw new UnexpectedScriptReply(PROJECT.name, reply);
};

/** Defines the scripts on `redis` (once per client) and returns typed callers. */
export const redisScripts = (redis: RedisClient): RedisScripts => {
  const append = scriptOf(redis, APPEND);
  const project = scriptOf(redis, PROJECT);
  const readState = scriptOf(redis, READ_STATE);
  const snapshot = scriptOf(redis, SNAPSHOT);
  const archiveDrop = scriptOf(redis, ARCHIVE_DROP);
  return {
    async append(args) {
      const k = args.keys;
      const row = typeof args.record === 'object' ? args.record : null;
      const reply = await append(
        k.streamKey,
        k.feedKey,
        k.readModelKey,
        k.indexKey,
        k.wakeKey,
        k.archiveDueKey,
        k.leaseKey,
        args.expected,
        args.gid,
        row ? 'row' : (args.record as 'feed' | 'none'),
        row?.summary ?? '',
        row?.indexMember ?? '',
        row ? (row.wakeAt ?? -1) : -1,
        row ? (row.expireAt ?? -1) : -1,
        row?.archive ? '1' : '0',
        row ? leaseArg(row) : '0',
        ...args.events,
      );
      return appendResult(args, reply);
    },
    async readState(streamKey, snapshotKey) {
      const reply = (await readState(streamKey, snapshotKey)) as unknown[];
      const [format, version, state, length, ...tail] = reply;
      if (typeof version !== 'number' || typeof length !== 'number')
        throw new UnexpectedScriptReply(READ_STATE.name, reply);
      return {
        snapshot: version >= 0 ? { format: String(format), version, state: String(state) } : null,
        length,
        tail: tail as string[],
      };
    },
    async snapshot(streamKey, snapshotKey, format, version, state) {
      return (await snapshot(streamKey, snapshotKey, format, version, state)) === 1;
    },
    async archiveDrop(keys, count, gid, markerTtlMs) {
      const reply = await archiveDrop(
        keys.streamKey,
        keys.snapshotKey,
        keys.archiveDueKey,
        keys.leaseKey,
        keys.readModelKey,
        count,
        gid,
        markerTtlMs,
      );
      if (reply !== 0 && reply !== 1) throw new UnexpectedScriptReply(ARCHIVE_DROP.name, reply);
      return reply === 1;
    },
    async project(args) {
      const reply = await project(
        args.readModelKey,
        args.indexKey,
        args.wakeKey,
        args.archiveDueKey,
        args.version,
        args.summary,
        args.indexMember,
        args.wakeAt ?? -1,
        args.gid,
        args.expireAt ?? -1,
        args.archive ? '1' : '0',
      );
      return projectResult(reply);
    },
  };
};
