import { describe, expect, it } from 'vitest';
import { fold, type TxEvent } from '@dtm-ts/domain';
import { retry, saga, submitted } from '../../domain/src/global-transaction/fixtures.unit-support';
import { crossingsOf } from './alerts';

/** The crossings each append reports, folding the events one append at a time. */
const crossingsAlong = (appends: TxEvent[][], limit: number) => {
  const seen: { key: string; count: number; error: string }[] = [];
  let events: TxEvent[] = [];
  for (const a of appends) {
    events = [...events, ...a];
    for (const c of crossingsOf(fold(events), a, limit))
      seen.push({ key: c.key, count: c.alert.retry_count, error: c.alert.error });
  }
  return seen;
};

describe('retry alerts: crossings of ALERT_RETRY_LIMIT', () => {
  const s = saga(2);

  it('when a branch fails fewer times in a row than the limit, then nothing crosses', () => {
    expect(
      crossingsAlong([submitted(s), [retry(0, 'action', 'error', 1, 2)], [retry(0, 'action', 'error', 3, 5)]], 3),
    ).toEqual([]);
  });

  it('when it reaches the limit, then the crossing names gid, branch, op, count and error; later retries of the same run share its key', () => {
    const seen = crossingsAlong(
      [submitted(s), ...[1, 2, 3, 4].map((t) => [retry(0, 'action', 'error', t * 10, t * 10 + 5)])],
      2,
    );
    expect(seen.map((c) => c.count)).toEqual([2, 3, 4]);
    expect(new Set(seen.map((c) => c.key)).size).toBe(1);
    const [first] = crossingsOf(
      fold([...submitted(s), retry(0, 'action', 'error', 1, 2), retry(0, 'action', 'error', 3, 4)]),
      [retry(0, 'action', 'error', 3, 4)],
      2,
    );
    expect(first?.alert).toMatchObject({
      gid: 'g1',
      trans_type: 'saga',
      branch_id: '01',
      op: 'action',
      retry_count: 2,
      error: 'error',
    });
  });

  it('when a non-error answer ends the run, then the next run that reaches the limit is a new crossing', () => {
    const seen = crossingsAlong(
      [
        submitted(s),
        [retry(0, 'action', 'error', 10, 11)],
        [retry(0, 'action', 'error', 20, 21)],
        [retry(0, 'action', 'ongoing', 30, 31)],
        [retry(0, 'action', 'error', 40, 41)],
        [retry(0, 'action', 'error', 50, 51)],
      ],
      2,
    );
    expect(seen).toHaveLength(2);
    expect(seen[0]!.key).not.toBe(seen[1]!.key);
  });

  it('when ongoing answers repeat, then they never count as failures', () => {
    const appends = [submitted(s), ...[1, 2, 3, 4, 5].map((t) => [retry(0, 'action', 'ongoing', t * 10, t * 10 + 1)])];
    expect(crossingsAlong(appends, 1)).toEqual([]);
  });

  it('when different branches cross, then each has its own key', () => {
    const seen = crossingsAlong(
      [submitted(s), [retry(0, 'compensate', 'error', 1, 2)], [retry(1, 'compensate', 'error', 3, 4)]],
      1,
    );
    expect(seen).toHaveLength(2);
    expect(seen[0]!.key).not.toBe(seen[1]!.key);
  });
});
