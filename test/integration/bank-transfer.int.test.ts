import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisProcess } from '@dtm-ts/testing';
import type { RunningTm } from '@dtm-ts/tm';
import { BankDb, createDatabase, dropDatabase, type DbSpec } from '../../examples/bank-transfer/src/bank-db';
import { startBank, type BankService } from '../../examples/bank-transfer/src/bank-service';
import { Chaos, seededRandom, type ChaosOptions } from '../../examples/bank-transfer/src/chaos';
import { transferBySaga, transferByTcc, waitForFinal, type Transfer } from '../../examples/bank-transfer/src/transfer';
import { startTestTm } from '../support/tm-harness';

const TRANSFERS = 500;
const ACCOUNTS = 20;
const INITIAL = 1_000;
const CONCURRENCY = 48;
// A failing run can be replayed: BANK_SEED=<the seed printed below> npx vitest run test/integration/bank-transfer…
const SEED = Number(process.env.BANK_SEED ?? Math.floor(Math.random() * 2 ** 31));

/**
 * Faults each bank injects into the calls it gets. Some delays pass the TM's 1 s request timeout (and the AP's 1.2 s
 * for a TCC try), so the caller gives up and retries (or cancels) while the first call is still running.
 */
const CHAOS: ChaosOptions = {
  refuse: 0.04,
  ongoing: 0.02,
  failBefore: 0.05,
  failAfter: 0.05,
  delay: 0.08,
  delayMs: [20, 1_300],
  crashAfterCommit: 0.04,
  crashBeforeCommit: 0.04,
};

const suffix = randomBytes(4).toString('hex');
const alphaSpec: DbSpec = {
  kind: 'postgres',
  host: process.env.PGHOST ?? '127.0.0.1',
  port: Number(process.env.PGPORT ?? 5432),
  user: 'postgres',
  database: `dtm_bank_alpha_${suffix}`,
};
const betaSpec: DbSpec = {
  kind: 'mysql',
  host: process.env.MYSQL_HOST ?? '127.0.0.1',
  port: Number(process.env.MYSQL_PORT ?? 3306),
  user: 'root',
  database: `dtm_bank_beta_${suffix}`,
};

let redis: RedisProcess;
let tm: RunningTm;
let dtm: string;
let alpha: BankService;
let beta: BankService;
const books: BankDb[] = [];

beforeAll(async () => {
  redis = await startRedis();
  // Branch calls time out after 1 s; errors back off 1 s, 2 s, 2 s, … so retries stay quick.
  tm = await startTestTm(redis.url, { requestTimeoutS: 1, backoffCapS: 2, jobLockMs: 10_000 });
  dtm = `${tm.url}/api/dtmsvr`;
  for (const spec of [alphaSpec, betaSpec]) await createDatabase(spec);
  const [a, b] = [BankDb.open('alpha', alphaSpec), BankDb.open('beta', betaSpec)];
  books.push(a, b);
  await a.createSchema(ACCOUNTS, INITIAL);
  await b.createSchema(ACCOUNTS, INITIAL);
  alpha = await startBank({ name: 'alpha', db: a, chaos: new Chaos(CHAOS, seededRandom(SEED + 1)) });
  beta = await startBank({ name: 'beta', db: b, chaos: new Chaos(CHAOS, seededRandom(SEED + 2)) });
});

afterAll(async () => {
  await alpha?.close();
  await beta?.close();
  await tm?.close();
  await redis?.stop();
  for (const b of books) await b.close();
  for (const spec of [alphaSpec, betaSpec]) await dropDatabase(spec).catch(() => undefined);
});

type Mode = 'saga' | 'tcc' | 'msg';

describe('bank transfer between a PostgreSQL bank and a MariaDB bank, through dtm-ts', () => {
  it(`when ${TRANSFERS} transfers run as saga, TCC and msg while the banks inject 409s, 500s, lost replies, delays and AP crashes, then no money is created or lost and every transfer is fully applied or fully undone`, async () => {
    console.log(`bank-transfer seed: ${SEED}`);
    // TM, both banks and the APs share this process: report how late its event loop ran, to explain a slow run.
    const lag = monitorEventLoopDelay({ resolution: 20 });
    lag.enable();
    const started = Date.now();
    const rnd = seededRandom(SEED);
    const pick = (n: number) => Math.floor(rnd() * n);
    const plan: { t: Transfer; mode: Mode; from: BankService; to: BankService }[] = Array.from(
      { length: TRANSFERS },
      (_, i) => {
        const mode = (['saga', 'tcc', 'msg'] as const)[pick(3)]!;
        const [from, to] = pick(2) === 0 ? [alpha, beta] : [beta, alpha];
        return {
          mode,
          from,
          to,
          t: {
            gid: `bank-${mode}-${i}-${randomBytes(4).toString('hex')}`,
            from: { bank: from.url, account: 1 + pick(ACCOUNTS) },
            to: { bank: to.url, account: 1 + pick(ACCOUNTS) },
            amount: 1 + pick(400),
          },
        };
      },
    );

    // The APs: CONCURRENCY transfers in flight at a time. What each AP call said is kept only for the report;
    // the TM's final status is what the books are checked against.
    const apSaid = new Map<string, string>();
    const options = { retryInterval: 1, requestTimeout: 1 };
    const queue = [...plan];
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let p = queue.shift(); p; p = queue.shift()) {
          const { t, mode, from } = p;
          const said =
            mode === 'saga'
              ? transferBySaga(dtm, t, options).then(() => 'submitted')
              : mode === 'tcc'
                ? transferByTcc(dtm, t, { ...options, timeoutToFail: 8, httpTimeoutMs: 1_200 }).then(() => 'submitted')
                : from.sendByMsg(dtm, t, { ...options, timeoutToFail: 2 });
          apSaid.set(t.gid, await said.catch((e: Error) => `${e.name}`));
        }
      }),
    );
    const submittedMs = Date.now() - started;

    const final = await waitForFinal(
      dtm,
      plan.map((p) => p.t.gid),
      // Alone this takes ~10 s. On a loaded machine (CI beside other work) the in-process TM's event loop stalls
      // past BullMQ job locks, and stalled passes wait for the sweep: the bound is about correctness, not speed.
      { timeoutMs: 180_000 },
    );
    const settledMs = Date.now() - started;
    lag.disable();

    // 1. No money created or lost, no hold left behind.
    const [ta, tb] = [await books[0]!.totals(), await books[1]!.totals()];
    expect(ta.balance + tb.balance).toBe(2 * ACCOUNTS * INITIAL);
    expect([ta.frozen, tb.frozen]).toEqual([0, 0]);

    // 2. Each transfer fully applied (succeed: -amount at the sender, +amount at the receiver) or fully undone
    //    (failed, or never stored: no trace in either ledger).
    const net = { alpha: await books[0]!.netByGid(), beta: await books[1]!.netByGid() };
    const wrong: string[] = [];
    const tally: Record<Mode, Record<string, number>> = { saga: {}, tcc: {}, msg: {} };
    for (const { t, mode, from, to } of plan) {
      const status = final.get(t.gid)!;
      tally[mode][status] = (tally[mode][status] ?? 0) + 1;
      const out = net[from.name as 'alpha' | 'beta'].get(t.gid) ?? 0;
      const into = net[to.name as 'alpha' | 'beta'].get(t.gid) ?? 0;
      const expected = status === 'succeed' ? [-t.amount, t.amount] : [0, 0];
      if (out !== expected[0] || into !== expected[1]) {
        wrong.push(
          `${t.gid} ${status} (AP: ${apSaid.get(t.gid)}): sender ${out}, receiver ${into}, amount ${t.amount}`,
        );
      }
    }
    expect(wrong).toEqual([]);

    // 3. The ledger explains every balance: no change happened outside a recorded, barrier-guarded operation.
    for (const bank of books) {
      const byAccount = await bank.netByAccount();
      for (const a of await bank.accounts())
        expect(a.balance, `${bank.name}#${a.id}`).toBe(INITIAL + (byAccount.get(a.id) ?? 0));
    }

    // 4. The run exercised what it claims: every fault was injected, every mode both committed and rolled back.
    const injected = Object.fromEntries(
      Object.keys(alpha.chaos.counts).map((k) => {
        const kind = k as keyof typeof alpha.chaos.counts;
        return [kind, alpha.chaos.counts[kind] + beta.chaos.counts[kind]];
      }),
    );
    console.log(
      `bank-transfer: ${TRANSFERS} transfers submitted in ${submittedMs} ms, all final after ${settledMs} ms;`,
      `event-loop delay p99 ${Math.round(lag.percentile(99) / 1e6)} ms, max ${Math.round(lag.max / 1e6)} ms;`,
      JSON.stringify({ tally, injected }),
    );
    for (const count of Object.values(injected)) expect(count).toBeGreaterThan(0);
    for (const mode of ['saga', 'tcc', 'msg'] as const) {
      expect(tally[mode].succeed ?? 0, mode).toBeGreaterThan(0);
      expect(tally[mode].failed ?? 0, mode).toBeGreaterThan(0);
    }
  }, 300_000);
});
