import { randomBytes } from 'node:crypto';
import { query } from '@dtm-ts/client';
import type { BankService } from '../../examples/bank-transfer/src/bank-service';
import { seededRandom } from '../../examples/bank-transfer/src/chaos';
import { transferBySaga, transferByTcc, transferByXa, type Transfer } from '../../examples/bank-transfer/src/transfer';
import { setTimeout as pause } from 'node:timers/promises';

export const MODES = ['saga', 'tcc', 'xa', 'msg-http', 'msg-kafka'] as const;
export type Mode = (typeof MODES)[number];
export type FinalStatus = 'succeed' | 'failed' | 'absent';

/** One transfer of the run, as the AP sent it and as the TM ended it. */
export interface TransferRecord {
  readonly t: Transfer;
  readonly mode: Mode;
  readonly from: BankService;
  readonly to: BankService;
  readonly startedAt: number;
  /** What the AP call said ('submitted', 'refused', an error's name, …); undefined while it runs. */
  apSaid?: string;
  /** The TM's final status once seen; undefined while open. */
  status?: FinalStatus;
  finalAt?: number;
}

export interface LoadOptions {
  readonly seed: number;
  /** AP loops running at once. */
  readonly concurrency: number;
  readonly accounts: number;
  readonly kafkaTopic: string;
  /** Starts every gid (unique per run: XA RECOVER lists every database's prepared transactions). */
  readonly gidPrefix: string;
  /** API base urls up now (the AP picks one per transfer). */
  readonly apis: () => string[];
  readonly banks: readonly [BankService, BankService];
}

/** Every transfer's AP call, by mode: the TM's retries and timeouts are short so a run ends within its bounds. */
const send = (r: TransferRecord, dtm: string, kafkaTopic: string): Promise<string> => {
  // An AP gives up on a call after 5 s (the client's default is 30 s): a hung API must not stall the load.
  const base = { retryInterval: 1, httpTimeoutMs: 5_000 };
  const twoPhase = { ...base, timeoutToFail: 12 };
  switch (r.mode) {
    case 'saga':
      return transferBySaga(dtm, r.t, base).then(() => 'submitted');
    case 'tcc':
      return transferByTcc(dtm, r.t, twoPhase).then(() => 'submitted');
    case 'xa':
      return transferByXa(dtm, r.t, twoPhase).then(() => 'submitted');
    case 'msg-http':
      return r.from.sendByMsg(dtm, r.t, { ...base, timeoutToFail: 3 });
    case 'msg-kafka':
      return r.from.sendByMsg(dtm, r.t, { ...base, timeoutToFail: 3, kafkaTopic });
  }
};

/**
 * The APs of a chaos run: `concurrency` loops, each sending seeded random transfers (the modes in turn; random
 * direction, accounts, amount) one after another through an API that is up, until `stop()`; `stop()` resolves once every AP call returned.
 */
export const startLoad = (opts: LoadOptions) => {
  const records = new Map<string, TransferRecord>();
  let running = true;
  let total = 0;
  const loop = async (i: number): Promise<void> => {
    const rnd = seededRandom(opts.seed * 31 + i);
    const pick = (k: number) => Math.floor(rnd() * k);
    let sent = 0;
    while (running) {
      const apis = opts.apis();
      if (apis.length === 0) {
        await pause(100);
        continue;
      }
      // Modes in turn from a loop-specific start, so that even a short run carries every mode; the rest is random.
      const mode = MODES[(i + sent++) % MODES.length]!;
      const [from, to] = pick(2) === 0 ? opts.banks : ([opts.banks[1], opts.banks[0]] as const);
      const t: Transfer = {
        gid: `${opts.gidPrefix}-${mode}-${total++}-${randomBytes(3).toString('hex')}`,
        from: { bank: from.url, account: 1 + pick(opts.accounts) },
        to: { bank: to.url, account: 1 + pick(opts.accounts) },
        amount: 1 + pick(300),
      };
      const r: TransferRecord = { t, mode, from, to, startedAt: Date.now() };
      records.set(t.gid, r);
      const dtm = `${apis[pick(apis.length)]}/api/dtmsvr`;
      r.apSaid = await send(r, dtm, opts.kafkaTopic).catch((e: Error) => e.name);
      await pause(pick(200));
    }
  };
  const loops = Array.from({ length: opts.concurrency }, (_, i) => loop(i));
  return {
    records,
    async stop(): Promise<void> {
      running = false;
      await Promise.all(loops);
    },
  };
};

/**
 * Follows the TM's status of every transfer still open (every `intervalMs`, through an API that is up), noting when
 * each one ended. A transfer the TM does not know is left open here: only the final check calls it absent.
 */
export const startTracker = (records: Map<string, TransferRecord>, apis: () => string[], intervalMs = 2_000) => {
  let running = true;
  const pollOnce = async (): Promise<number> => {
    // Those the TM did not know are asked again: an API that was slow may still store one after its AP gave up.
    const open = [...records.values()].filter((r) => r.status === undefined && r.apSaid !== undefined);
    let stillOpen = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let r = open.shift(); r; r = open.shift()) {
          const live = apis();
          if (live.length === 0) {
            stillOpen++;
            continue;
          }
          const dtm = `${live[Math.floor(Math.random() * live.length)]}/api/dtmsvr`;
          const tx = await query(dtm, r.t.gid, { httpTimeoutMs: 3_000 }).then(
            (q) => q.transaction,
            () => undefined,
          );
          const status = tx?.status;
          if (status === 'succeed' || status === 'failed') {
            r.status = status;
            r.finalAt = Date.now();
          }
          // null: unknown to the TM after its AP returned, so not stored (yet): not open; the final check decides.
          else if (tx !== null) stillOpen++;
        }
      }),
    );
    return stillOpen;
  };
  const loop = (async () => {
    while (running) {
      await pollOnce();
      await pause(intervalMs);
    }
  })();
  return {
    pollOnce,
    async stop(): Promise<void> {
      running = false;
      await loop;
    },
  };
};
