/**
 * The bank-transfer walk-through: two banks, each its own RM with its own database (alpha on PostgreSQL, beta on
 * MariaDB/MySQL), and an AP moving money between them as a saga, as TCC, as XA, and as a two-phase message, through a TM
 * at DTM_URL. See README.md.
 */
import { randomBytes } from 'node:crypto';
import { createDatabase, dropDatabase, BankDb, type DbSpec } from './bank-db';
import { startBank } from './bank-service';
import { Chaos, seededRandom } from './chaos';
import { transferBySaga, transferByTcc, transferByXa, waitForFinal, type Transfer } from './transfer';

const env = process.env;
const dtm = env.DTM_URL ?? 'http://127.0.0.1:36789/api/dtmsvr';
const transfers = Number(env.TRANSFERS ?? 12);
const alphaDb: DbSpec = {
  kind: 'postgres',
  host: env.PGHOST ?? '127.0.0.1',
  port: Number(env.PGPORT ?? 5432),
  user: env.PGUSER ?? 'postgres',
  database: 'dtm_example_alpha',
};
const betaDb: DbSpec = {
  kind: 'mysql',
  host: env.MYSQL_HOST ?? '127.0.0.1',
  port: Number(env.MYSQL_PORT ?? 3306),
  user: env.MYSQL_USER ?? 'root',
  database: 'dtm_example_beta',
};
// CHAOS=1: the banks inject 409s, 500s (before and after committing) and delays into the calls they receive.
const chaos = () =>
  new Chaos(
    env.CHAOS === '1'
      ? {
          refuse: 0.05,
          failBefore: 0.05,
          failAfter: 0.05,
          delay: 0.1,
          delayMs: [50, 400],
          crashAfterCommit: 0.05,
          crashBeforeCommit: 0.05,
        }
      : undefined,
    seededRandom(Number(env.SEED ?? Date.now())),
  );

const main = async (): Promise<void> => {
  for (const spec of [alphaDb, betaDb]) {
    await dropDatabase(spec);
    await createDatabase(spec);
  }
  const alphaBooks = BankDb.open('alpha', alphaDb);
  const betaBooks = BankDb.open('beta', betaDb);
  await alphaBooks.createSchema(3, 1000);
  await betaBooks.createSchema(3, 1000);
  const alpha = await startBank({
    name: 'alpha',
    db: alphaBooks,
    chaos: chaos(),
    port: Number(env.ALPHA_PORT ?? 8081),
  });
  const beta = await startBank({ name: 'beta', db: betaBooks, chaos: chaos(), port: Number(env.BETA_PORT ?? 8082) });
  console.log(
    `bank alpha (PostgreSQL ${alphaDb.database}) at ${alpha.url}; bank beta (MariaDB ${betaDb.database}) at ${beta.url}`,
  );

  const options = { retryInterval: 1, timeoutToFail: 10 };
  const gids: string[] = [];
  for (let i = 0; i < transfers; i++) {
    const mode = (['saga', 'tcc', 'xa', 'msg'] as const)[i % 4]!;
    const [from, to] = i % 2 === 0 ? [alpha, beta] : [beta, alpha];
    const t: Transfer = {
      gid: `${mode}-${randomBytes(6).toString('hex')}`,
      from: { bank: from.url, account: 1 + (i % 3) },
      to: { bank: to.url, account: 1 + ((i + 1) % 3) },
      amount: 100 + i * 10,
    };
    gids.push(t.gid);
    const outcome =
      mode === 'saga'
        ? await transferBySaga(dtm, t, options).then(() => 'submitted')
        : mode === 'tcc' || mode === 'xa'
          ? await (mode === 'tcc' ? transferByTcc : transferByXa)(dtm, t, options).then(
              () => 'submitted',
              (e: Error) => `aborted (${e.message})`,
            )
          : await from.sendByMsg(dtm, t, options);
    console.log(`${t.gid}: ${t.amount} from ${from.name}#${t.from.account} to ${to.name}#${t.to.account}: ${outcome}`);
  }

  const final = await waitForFinal(dtm, gids, { timeoutMs: 120_000 });
  for (const gid of gids) console.log(`${gid}: ${final.get(gid)}`);
  for (const bank of [alpha, beta]) {
    console.log(`${bank.name}:`, await bank.db.accounts(), 'total', (await bank.db.totals()).balance);
  }
  const total = (await alphaBooks.totals()).balance + (await betaBooks.totals()).balance;
  console.log(`money in both banks: ${total} (started with 6000)`);
  await alpha.close();
  await beta.close();
  await alphaBooks.close();
  await betaBooks.close();
};

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
