import { describe, expect, it } from 'vitest';
import { BranchBarrier, type BarrierKey, type BarrierRow, type SqlBarrierStore } from './barrier';
import { DtmBadRequest, DtmDuplicated, DtmFailure } from './errors';

/** The barrier table as a map, with transactions that keep their inserts only when they commit. */
class MemoryStore implements SqlBarrierStore<Map<string, BarrierRow>> {
  readonly kind = 'sql';
  readonly rows = new Map<string, BarrierRow>();
  private key = (k: BarrierKey) => `${k.gid}/${k.branchId}/${k.op}/${k.barrierId}`;

  async transaction<T>(fn: (tx: Map<string, BarrierRow>) => Promise<T>): Promise<T> {
    const tx = new Map<string, BarrierRow>();
    const result = await fn(tx);
    for (const [k, v] of tx) this.rows.set(k, v);
    return result;
  }

  async insertIgnore(tx: Map<string, BarrierRow> | null, row: BarrierRow): Promise<boolean> {
    const k = this.key(row);
    if (this.rows.has(k) || tx?.has(k)) return false;
    (tx ?? this.rows).set(k, row);
    return true;
  }

  async reasonOf(tx: Map<string, BarrierRow> | null, k: BarrierKey): Promise<string | undefined> {
    return (tx?.get(this.key(k)) ?? this.rows.get(this.key(k)))?.reason;
  }
}

const bb = (op: string, gid = 'g', transType = 'saga') => new BranchBarrier(transType, gid, '01', op);
const run = async () => 'ran';

describe('the barrier algorithm (reference §7)', () => {
  it('when the four query parameters are not all there, then the barrier refuses the request', () => {
    expect(() => BranchBarrier.fromQuery({ gid: 'g', trans_type: 'saga', branch_id: '01' })).toThrow(DtmBadRequest);
    expect(BranchBarrier.fromQuery(new URLSearchParams('gid=g&trans_type=tcc&branch_id=01&op=try')).op).toBe('try');
  });

  it('when one barrier object makes several calls, then each gets the next barrier id', () => {
    const b = bb('action');
    expect([b.nextBarrierId(), b.nextBarrierId()]).toEqual(['01', '02']);
  });

  it('when an op repeats, then the business is skipped as a duplicate', async () => {
    const store = new MemoryStore();
    expect(await bb('action').call(store, run)).toEqual({ status: 'executed', value: 'ran' });
    expect(await bb('action').call(store, run)).toEqual({ status: 'skipped', reason: 'duplicate' });
  });

  it('when a cancel comes first, then it is a null compensation and writes the try row; the try is then hanging', async () => {
    const store = new MemoryStore();
    expect(await bb('cancel', 'g', 'tcc').call(store, run)).toEqual({ status: 'skipped', reason: 'null-compensation' });
    expect(store.rows.get('g/01/try/01')?.reason).toBe('cancel');
    expect(await bb('try', 'g', 'tcc').call(store, run)).toEqual({ status: 'skipped', reason: 'hanging' });
  });

  it('when the business throws, then the barrier rows are not kept', async () => {
    const store = new MemoryStore();
    await expect(bb('action').call(store, () => Promise.reject(new DtmFailure('no')))).rejects.toBeInstanceOf(
      DtmFailure,
    );
    expect(store.rows.size).toBe(0);
  });

  it('when a msg local transaction finds its row, then DtmDuplicated; the check-back reads commit or rollback', async () => {
    const store = new MemoryStore();
    const msg = () => new BranchBarrier('msg', 'm', '00', 'msg');
    await msg().call(store, run);
    await expect(msg().call(store, run)).rejects.toBeInstanceOf(DtmDuplicated);
    await expect(msg().queryPrepared(store)).resolves.toBeUndefined();
    await expect(new BranchBarrier('msg', 'other', '00', 'msg').queryPrepared(store)).rejects.toBeInstanceOf(
      DtmFailure,
    );
  });
});
