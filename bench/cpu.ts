import { readFileSync, readdirSync } from 'node:fs';
import type { Redis } from 'ioredis';

/** Clock ticks per second of /proc's times; 100 on every Linux we run on. */
const CLK_TCK = 100;

/** CPU time (user + system) a process has used so far, in µs, from /proc/<pid>/stat (Linux). */
export const cpuMicros = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces, so split after its closing parenthesis).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1e6) / CLK_TCK;
};

/** The pids of `pid`'s children, from /proc/<pid>/task/<tid>/children (Linux). */
const childPids = (pid: number): number[] => {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
    );
  } catch {
    return []; // exited meanwhile
  }
};

/**
 * CPU time of `pid` and every live descendant (TM_PROCESSES: the primary and its TM processes), in µs. A
 * process that exits between two readings takes its time with it: compare readings of a stable tree only.
 */
export const treeCpuMicros = (pid: number): number => {
  let total = 0;
  for (const p of [pid, ...childPids(pid)]) {
    try {
      total += p === pid ? cpuMicros(p) : treeCpuMicros(p);
    } catch {
      // exited meanwhile
    }
  }
  return total;
};

/** What Redis has done so far: its CPU time and its calls per command (scripts' inner calls included). */
export interface RedisCounters {
  readonly cpuMicros: number;
  readonly calls: ReadonlyMap<string, number>;
}

const infoField = (info: string, name: string): number => {
  const m = new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info);
  return m ? Number(m[1]) : 0;
};

export const redisCounters = async (redis: Redis): Promise<RedisCounters> => {
  const cpu = await redis.info('cpu');
  const stats = await redis.info('commandstats');
  const calls = new Map<string, number>();
  for (const m of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(m[1]!, Number(m[2]));
  return {
    cpuMicros: (infoField(cpu, 'used_cpu_user') + infoField(cpu, 'used_cpu_sys')) * 1e6,
    calls,
  };
};

/** The counters of several servers (a cluster's masters) as one. */
export const sumCounters = (all: readonly RedisCounters[]): RedisCounters => {
  const calls = new Map<string, number>();
  for (const c of all) for (const [cmd, n] of c.calls) calls.set(cmd, (calls.get(cmd) ?? 0) + n);
  return { cpuMicros: all.reduce((t, c) => t + c.cpuMicros, 0), calls };
};
