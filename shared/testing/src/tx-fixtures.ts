import { DEFAULT_OPTIONS, type TxEvent } from '@dtm-ts/domain';

/**
 * The first event of a saga with `steps` sequential steps (actions `http://rm/a<i>`, compensations
 * `http://rm/c<i>`, every payload `payload`), for tests and benchmarks that seed a stream by hand.
 */
export const preparedSaga = (opts: { gid?: string; steps?: number; at: string; payload?: string }): TxEvent => {
  const n = opts.steps ?? 1;
  const payload = opts.payload ?? '';
  const steps = Array.from({ length: n }, (_, i) => ({ action: `http://rm/a${i}`, compensate: `http://rm/c${i}` }));
  return {
    type: 'TransactionPrepared',
    data: {
      definition: {
        gid: opts.gid ?? 'g1',
        transType: 'saga',
        protocol: 'http',
        steps,
        payloads: steps.map(() => payload),
        customData: '',
        queryPrepared: '',
        options: DEFAULT_OPTIONS,
        ordering: { concurrent: false, orders: {} },
        delayS: 0,
      },
      branches: steps.flatMap((s, i) => {
        const branchId = String(i + 1).padStart(2, '0');
        return [
          { branchId, op: 'compensate' as const, url: s.compensate, data: payload },
          { branchId, op: 'action' as const, url: s.action, data: payload },
        ];
      }),
      at: opts.at,
    },
  };
};
