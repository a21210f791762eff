/**
 * `npm run chaos`: a long seeded chaos run (see README, Chaos). CHAOS_SEED replays a schedule, CHAOS_MINUTES sets
 * how long faults are injected, CHAOS_RECOVERY_S how long transfers then have to end. Exits 1 when an invariant
 * failed.
 */
import { runChaos } from './run';

const env = process.env;
const seed = env.CHAOS_SEED ? Number(env.CHAOS_SEED) : Math.floor(Math.random() * 2 ** 31);
const number = (name: string, fallback: number): number => {
  const v = env[name] === undefined || env[name] === '' ? fallback : Number(env[name]);
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`${name} must be a positive number, got '${env[name]}'`);
    process.exit(2);
  }
  return v;
};
if (!Number.isInteger(seed) || seed < 0) {
  console.error(`CHAOS_SEED must be a non-negative integer, got '${env.CHAOS_SEED}'`);
  process.exit(2);
}

const main = async (): Promise<void> => {
  console.log(`chaos seed ${seed} (replay: CHAOS_SEED=${seed})`);
  const figures = await runChaos({
    seed,
    minutes: number('CHAOS_MINUTES', 10),
    recoveryBoundS: number('CHAOS_RECOVERY_S', 300),
    apis: number('CHAOS_APIS', 2),
    workers: number('CHAOS_WORKERS', 3),
    concurrency: number('CHAOS_CONCURRENCY', 6),
    meanGapMs: number('CHAOS_FAULT_GAP_MS', 5_000),
    netns: env.CHAOS_NETNS !== '0',
    log: (line) => console.log(line),
  });
  process.exit(figures.failures.length === 0 ? 0 : 1);
};

main().catch((err: unknown) => {
  console.error(`chaos seed ${seed}: the run itself failed:`, err);
  process.exit(1);
});
