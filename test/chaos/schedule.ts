import { seededRandom } from '../../examples/bank-transfer/src/chaos';
import type { ProxyMode } from './faults/tcp-proxy';

/** What the TCP fault proxies stand in front of. */
export type ProxyTarget = 'alpha' | 'beta' | 'redis' | 'kafka';

/** One fault of the schedule, fired `atMs` after the run started. */
export type Fault =
  | { readonly kind: 'kill-api'; readonly pick: number; readonly downMs: number }
  | { readonly kind: 'kill-worker'; readonly pick: number; readonly downMs: number }
  | { readonly kind: 'pause-worker'; readonly pick: number; readonly ms: number }
  | { readonly kind: 'kill-redis'; readonly downMs: number }
  | { readonly kind: 'restart-kafka'; readonly downMs: number }
  | { readonly kind: 'proxy'; readonly target: ProxyTarget; readonly mode: ProxyMode; readonly forMs: number }
  | { readonly kind: 'clock-jump'; readonly offsetS: number }
  | { readonly kind: 'partition'; readonly forMs: number };

export type ScheduledFault = Fault & { readonly atMs: number };

export interface ScheduleOptions {
  /** How long faults are injected. */
  readonly durationMs: number;
  /** Mean gap between two faults (exponentially distributed: faults overlap). */
  readonly meanGapMs: number;
  /** The pass lease (JOB_LOCK_MS): pauses and partitions last longer than it. */
  readonly leaseMs: number;
  /** The skewed worker's starting offset; the mid-run jump goes to the other side. */
  readonly clockOffsetS: number;
}

/** Relative weights of the faults drawn at random (the clock jump and the partitions are placed, not drawn). */
const WEIGHTS: readonly [Fault['kind'], number][] = [
  ['kill-api', 2],
  ['kill-worker', 3],
  ['pause-worker', 1.5],
  ['kill-redis', 0.6],
  ['restart-kafka', 0.5],
  ['proxy', 3],
];

const TARGETS: readonly ProxyTarget[] = ['alpha', 'beta', 'redis', 'kafka'];

/**
 * The whole fault schedule of a run, from its seed alone: the same seed gives the same faults at the same offsets
 * (what the system does in between still depends on timing). Picks (`pick`) choose among the processes of a kind
 * that are up when the fault fires.
 */
export const buildSchedule = (seed: number, opts: ScheduleOptions): ScheduledFault[] => {
  const rnd = seededRandom(seed ^ 0x5eed);
  const between = (lo: number, hi: number): number => Math.round(lo + rnd() * (hi - lo));
  const total = WEIGHTS.reduce((s, [, w]) => s + w, 0);
  const draw = (): Fault['kind'] => {
    let x = rnd() * total;
    for (const [kind, w] of WEIGHTS) if ((x -= w) < 0) return kind;
    return WEIGHTS[0]![0];
  };
  const proxyMode = (target: ProxyTarget): ProxyMode => {
    const r = rnd();
    // Redis and Kafka black holes stay short: the point is a stall, not a run-long outage.
    if (r < 0.25) return { blackhole: true };
    if (r < 0.55) return { reset: target === 'redis' ? 0.3 : 0.5 };
    return { latencyMs: between(50, 600), jitterMs: between(0, 400) };
  };
  const out: ScheduledFault[] = [];
  const add = (at: number, kind: Fault['kind'], target?: ProxyTarget): void => {
    const pick = Math.floor(rnd() * 1_000);
    switch (kind) {
      case 'kill-api':
        out.push({ atMs: at, kind, pick, downMs: between(200, 4_000) });
        break;
      case 'kill-worker':
        out.push({ atMs: at, kind, pick, downMs: between(200, 6_000) });
        break;
      case 'pause-worker':
        out.push({ atMs: at, kind, pick, ms: between(opts.leaseMs + 1_000, 2 * opts.leaseMs + 2_000) });
        break;
      case 'kill-redis':
        out.push({ atMs: at, kind, downMs: between(200, 3_000) });
        break;
      case 'restart-kafka':
        out.push({ atMs: at, kind, downMs: between(500, 5_000) });
        break;
      case 'proxy': {
        const to = target ?? TARGETS[Math.floor(rnd() * TARGETS.length)]!;
        const mode = proxyMode(to);
        const forMs = mode.blackhole ? between(1_000, to === 'redis' ? 3_000 : 5_000) : between(2_000, 8_000);
        out.push({ atMs: at, kind, target: to, mode, forMs });
        break;
      }
    }
  };
  // Every kind at least once, however short the run (each proxy too), at random offsets in its first 80%; then
  // random ones, one after another with exponential gaps.
  for (const [kind] of WEIGHTS)
    for (const target of kind === 'proxy' ? TARGETS : [undefined])
      add(between(1_000, opts.durationMs * 0.8), kind, target);
  for (let at = between(1_000, 3_000); at < opts.durationMs; at += Math.round(-Math.log(1 - rnd()) * opts.meanGapMs))
    add(at, draw());
  // The skewed worker's clock jumps once, mid-run, to the other side; the partitioned worker is cut twice, each time
  // for longer than its lease (at a third and two thirds of the run).
  out.push({ atMs: Math.round(opts.durationMs / 2), kind: 'clock-jump', offsetS: -opts.clockOffsetS });
  for (const third of [1, 2])
    out.push({
      atMs: Math.round((opts.durationMs * third) / 3),
      kind: 'partition',
      forMs: between(2 * opts.leaseMs + 2_000, 3 * opts.leaseMs + 4_000),
    });
  return out.sort((a, b) => a.atMs - b.atMs);
};

/** How many faults of each kind a schedule holds. */
export const countKinds = (faults: readonly Fault[]): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const f of faults) {
    const k = f.kind === 'proxy' ? `proxy-${f.target}-${Object.keys(f.mode).join('+')}` : f.kind;
    counts[k] = (counts[k] ?? 0) + 1;
  }
  return counts;
};
