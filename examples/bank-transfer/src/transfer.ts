import {
  query,
  Saga,
  tccGlobalTransaction,
  xaGlobalTransaction,
  type SagaOptions,
  type TccOptions,
  type XaOptions,
} from '@dtm-ts/client';

/** One side of a transfer: a bank (its RM's base url) and an account there. */
export interface Side {
  readonly bank: string;
  readonly account: number;
}

/** Move `amount` from one bank's account to another's, as global transaction `gid`. */
export interface Transfer {
  readonly gid: string;
  readonly from: Side;
  readonly to: Side;
  readonly amount: number;
}

/**
 * The AP of a saga transfer: step 1 debits `from` (compensation: credit it back), step 2 credits `to`
 * (compensation: debit it back). If the debit is refused (409: not enough money), nothing else happens; if the
 * credit is refused, the debit is undone. Resolves once the TM stored the saga (it finishes in the background).
 */
export const transferBySaga = (dtm: string, t: Transfer, options: SagaOptions = {}): Promise<void> =>
  new Saga(dtm, t.gid, options)
    .add(`${t.from.bank}/saga/TransOut`, `${t.from.bank}/saga/TransOutRevert`, {
      account: t.from.account,
      amount: t.amount,
    })
    .add(`${t.to.bank}/saga/TransIn`, `${t.to.bank}/saga/TransInRevert`, { account: t.to.account, amount: t.amount })
    .submit();

/**
 * The AP of a TCC transfer: try holds the money at `from` and checks `to`; when both tries succeed the TM confirms
 * (the money moves), otherwise it cancels (the hold is released). Rejects with the try's error when one failed.
 */
export const transferByTcc = (dtm: string, t: Transfer, options: TccOptions = {}): Promise<void> =>
  tccGlobalTransaction(dtm, t.gid, options, async (tcc) => {
    const out = { account: t.from.account, amount: t.amount };
    const into = { account: t.to.account, amount: t.amount };
    await tcc.callBranch(
      out,
      `${t.from.bank}/tcc/TransOutTry`,
      `${t.from.bank}/tcc/TransOutConfirm`,
      `${t.from.bank}/tcc/TransOutCancel`,
    );
    await tcc.callBranch(
      into,
      `${t.to.bank}/tcc/TransInTry`,
      `${t.to.bank}/tcc/TransInConfirm`,
      `${t.to.bank}/tcc/TransInCancel`,
    );
  });

/**
 * The AP of an XA transfer: each bank debits or credits inside a local XA transaction it leaves prepared; when
 * both prepared the AP submits and the TM commits both, otherwise it aborts and the TM rolls back the prepared
 * ones. Rejects with the branch's error when one failed (409 when the sender is short).
 */
export const transferByXa = (dtm: string, t: Transfer, options: XaOptions = {}): Promise<void> =>
  xaGlobalTransaction(dtm, t.gid, options, async (xa) => {
    await xa.callBranch({ account: t.from.account, amount: t.amount }, `${t.from.bank}/xa/TransOut`);
    await xa.callBranch({ account: t.to.account, amount: t.amount }, `${t.to.bank}/xa/TransIn`);
  });

/**
 * Polls the TM until every gid is finished (`succeed` or `failed`), `concurrency` queries at a time. Call it after
 * every AP call returned: a gid the TM does not know then never will be (its prepare or submit never arrived), and
 * counts as `absent`. Resolves with each gid's final status; rejects after `timeoutMs`, naming those still open.
 */
export const waitForFinal = async (
  dtm: string,
  gids: readonly string[],
  opts: { timeoutMs?: number; concurrency?: number } = {},
): Promise<Map<string, 'succeed' | 'failed' | 'absent'>> => {
  const done = new Map<string, 'succeed' | 'failed' | 'absent'>();
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let pending = [...gids];
  const last = new Map<string, string>();
  while (pending.length > 0) {
    const next: string[] = [];
    const queue = [...pending];
    await Promise.all(
      Array.from({ length: Math.min(opts.concurrency ?? 32, queue.length) }, async () => {
        for (let gid = queue.shift(); gid !== undefined; gid = queue.shift()) {
          const tx = (await query(dtm, gid)).transaction;
          const status = tx === null ? 'absent' : tx.status;
          if (status === 'succeed' || status === 'failed' || status === 'absent') done.set(gid, status);
          else {
            last.set(gid, String(status));
            next.push(gid);
          }
        }
      }),
    );
    pending = next;
    if (pending.length === 0) break;
    if (Date.now() > deadline) {
      const open = pending.slice(0, 10).map((g) => `${g}:${last.get(g)}`);
      throw new Error(`${pending.length} transfers still open: ${open.join(', ')}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return done;
};
