import { describe, expect, it } from 'vitest';
import type { GlobalTransaction } from '@dtm-ts/domain';
import type { DtmMetrics, Logger } from '@dtm-ts/telemetry';
import { driverObserver, opLabel } from './observer';

describe('metric labels', () => {
  it("when a workflow names its ops, then the branch metrics label them 'workflow', so the label set stays fixed", () => {
    const labels: Record<string, unknown>[] = [];
    const counter = { add: (_: number, attrs: Record<string, unknown>) => labels.push(attrs) };
    const metrics = { branchProcess: counter } as unknown as DtmMetrics;
    const observer = driverObserver(metrics, {} as Logger, () => 0);
    const tx = { status: 'submitted', definition: { transType: 'workflow' } } as unknown as GlobalTransaction;
    for (const op of ['charge-card-42', 'ship-order-7', 'action'])
      observer.onBranchResult?.('g', tx, { branchId: '01', op, url: 'http://rm' } as never, { kind: 'success' }, 1);
    expect(labels.map((l) => l.branchtype)).toEqual(['workflow', 'workflow', 'action']);
  });

  it("when the op is one of DTM's, then the label is the op itself", () => {
    for (const op of ['action', 'compensate', 'confirm', 'cancel', 'commit', 'rollback', 'msg'])
      expect(opLabel(op)).toBe(op);
    expect(opLabel('__proto__')).toBe('workflow');
  });
});
