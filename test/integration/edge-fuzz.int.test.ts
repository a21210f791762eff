import { describe, expect, it } from 'vitest';
import { runEdgeFuzz } from '../support/edge-fuzz';
import { useTmFixture } from '../support/tm-harness';

const fx = useTmFixture();

/** A fixed seed and a bounded budget here; `npm run fuzz` (FUZZ_RUNS, FUZZ_SEED) for long runs. */
const SEED = 20261202;
const RUNS = 400;

describe('fuzz of every endpoint (HTTP and JSON-RPC)', () => {
  it('when any generated request arrives, then no answer is a 5xx, a refusal writes nothing, and accepted sagas end', async () => {
    const report = await runEdgeFuzz({ tm: fx.tm, peer: fx.peer, runs: RUNS, seed: SEED });
    console.log(
      `fuzz seed=${SEED}: ${report.cases} cases, ${report.accepted} accepted, ${report.refused} refused, ` +
        `${report.serverErrors.length} 5xx, ${report.writtenOnRefusal.length} written on refusal, ` +
        `${report.stranded.length} stranded of ${report.mustEnd} that must end`,
    );
    expect(report.serverErrors.map((e) => `${e.status} ${e.case.label}: ${e.body}`)).toEqual([]);
    expect(report.writtenOnRefusal.map((e) => `${e.status} ${e.case.label} ${String(e.case.gid)}`)).toEqual([]);
    expect(report.stranded).toEqual([]);
    // The budget explores both sides of the edge, and real sagas behind it.
    expect(report.accepted).toBeGreaterThan(RUNS / 20);
    expect(report.refused).toBeGreaterThan(RUNS / 4);
    expect(report.mustEnd).toBeGreaterThan(5);
  });
});
