import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { Gid } from '@dtm-ts/domain';
import { VersionConflict } from '@dtm-ts/ports';

/** Read once at module load: a missing file fails at startup, not on the first append. */
const lua = (file: string): string => readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8');

const APPEND = { name: 'dtmAppend2', numberOfKeys: 2, lua: lua('append-2.lua') } as const;
const PROJECT = { name: 'dtmProject3', numberOfKeys: 3, lua: lua('project-3.lua') } as const;

type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;

/**
 * The client's function for a script, defining it on first use. ioredis then sends EVALSHA and falls back to
 * EVAL when the server lost its script cache (after a restart, say).
 */
const scriptOf = (redis: Redis, script: { name: string; numberOfKeys: number; lua: string }): ScriptFn => {
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

/** What a stream append needs, as append-2.lua takes it. */
export interface AppendArgs {
  readonly streamKey: string;
  readonly feedKey: string;
  readonly gid: Gid;
  readonly expected: number;
  readonly events: readonly string[];
}

/** What a read-model write needs, as project-3.lua takes it. */
export interface ProjectArgs {
  readonly readModelKey: string;
  readonly indexKey: string;
  readonly wakeKey: string;
  readonly gid: Gid;
  readonly version: number;
  readonly summary: string;
  readonly indexMember: string;
  /** Epoch ms, or null when finished. */
  readonly wakeAt: number | null;
  /** Epoch ms after which a finished transaction leaves the read model; null: kept. */
  readonly expireAt?: number | null;
}

/** The adapters' Lua scripts on one client, with their return codes turned into values and typed errors. */
export interface RedisScripts {
  /** Resolves to the revision of the last event; rejects with VersionConflict when the stream moved. */
  append(args: AppendArgs): Promise<number>;
  /** Resolves to true when written, false when a same or newer version was already stored. */
  project(args: ProjectArgs): Promise<boolean>;
}

/** Turns append-2.lua's reply into the last revision, or throws what its negative code means. */
export const appendResult = (args: Pick<AppendArgs, 'gid' | 'expected'>, reply: unknown): number => {
  if (typeof reply === 'number' && reply >= 0) return reply;
  if (Array.isArray(reply) && reply[0] === -1 && typeof reply[1] === 'number') {
    throw new VersionConflict(args.gid, args.expected, reply[1]);
  }
  throw new UnexpectedScriptReply(APPEND.name, reply);
};

/** Turns project-3.lua's reply into whether it wrote. */
export const projectResult = (reply: unknown): boolean => {
  if (reply === 1) return true;
  if (reply === 0) return false;
  throw new UnexpectedScriptReply(PROJECT.name, reply);
};

/** Defines the scripts on `redis` (once per client) and returns typed callers. */
export const redisScripts = (redis: Redis): RedisScripts => {
  const append = scriptOf(redis, APPEND);
  const project = scriptOf(redis, PROJECT);
  return {
    async append(args) {
      const reply = await append(args.streamKey, args.feedKey, args.expected, args.gid, ...args.events);
      return appendResult(args, reply);
    },
    async project(args) {
      const reply = await project(
        args.readModelKey,
        args.indexKey,
        args.wakeKey,
        args.version,
        args.summary,
        args.indexMember,
        args.wakeAt ?? -1,
        args.gid,
        args.expireAt ?? -1,
      );
      return projectResult(reply);
    },
  };
};
