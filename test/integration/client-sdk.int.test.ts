import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BranchBarrier,
  DtmFailure,
  DtmOngoing,
  DtmTransportError,
  Msg,
  MysqlBarrierStore,
  MysqlXaResource,
  newGid,
  PgBarrierStore,
  PgXaResource,
  query,
  queryPreparedHandler,
  rmHandler,
  Saga,
  tccGlobalTransaction,
  xaGlobalTransaction,
  xaLocalTransaction,
  type GlobalStatus,
  type SqlBarrierStore,
  type XaResource,
} from '@dtm-ts/client';
import { startRedis, type RedisProcess } from '@dtm-ts/testing';
import type { RunningTm } from '@dtm-ts/tm';
import { preparedTransactionsOn, requirePreparedTransactions } from '../support/postgres';
import { startTestTm } from '../support/tm-harness';
import { pause, waitFor as waitUntil } from '../support/wait';

const PG = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), user: 'postgres' };
const MY = { host: process.env.MYSQL_HOST ?? '127.0.0.1', port: Number(process.env.MYSQL_PORT ?? 3306), user: 'root' };
const dbName = `dtm_client_sdk_${randomBytes(5).toString('hex')}`;
const gidOf = (label: string) => `${label}-${randomBytes(6).toString('hex')}`;

type DbKey = 'pg' | 'my';
/** What the RM needs from each database: barrier, XA, and the three statements of an account. */
interface Bank<Tx> {
  readonly store: SqlBarrierStore<Tx>;
  readonly xa: XaResource<Tx>;
  adjust(tx: Tx, account: number, delta: number): Promise<void>;
  /** frozen += amount when balance - frozen covers it (TCC try of a debit); false when it does not. */
  freeze(tx: Tx, account: number, amount: number): Promise<boolean>;
  /** balance -= amount, frozen -= amount (TCC confirm of a debit). */
  settle(tx: Tx, account: number, amount: number): Promise<void>;
  unfreeze(tx: Tx, account: number, amount: number): Promise<void>;
  read(account: number): Promise<{ balance: number; frozen: number }>;
  preparedXids(): Promise<string[]>;
}

let redis: RedisProcess;
let tm: RunningTm;
let dtm: string;
let rm: string;
let server: Server;
let pgAdmin: pg.Client;
let pgPool: pg.Pool;
let myAdmin: mysql.Connection;
let myPool: mysql.Pool;
let pgXaEnabled = false;
const banks = {} as Record<DbKey, Bank<unknown>>;
/** Every branch call the RM received: `<db>/<route>:<op>` per gid. */
const calls = new Map<string, { what: string; at: number; end?: number }[]>();

/** A query parameter as a string ('' when absent or repeated). */
const param = (req: express.Request, key: string): string => {
  const v = req.query[key];
  return typeof v === 'string' ? v : '';
};

const record = (req: express.Request, what: string) => {
  const gid = param(req, 'gid');
  const list = calls.get(gid) ?? [];
  const entry = { what: `${what}:${param(req, 'op')}`, at: Date.now() } as {
    what: string;
    at: number;
    end?: number;
  };
  list.push(entry);
  calls.set(gid, list);
  return entry;
};
const callsOf = (gid: string) => (calls.get(gid) ?? []).map((c) => c.what);

/**
 * The RM under test, one set of routes per database. Query parameters the AP puts in its urls script it:
 * `fail=409|425|500` answers that instead of doing the business; `delay=<ms>` waits first.
 */
const rmApp = () => {
  const app = express();
  app.use(express.json());
  const scripted = async (req: express.Request) => {
    const delay = Number(param(req, 'delay') || 0);
    if (delay > 0) await pause(delay);
    const fail = param(req, 'fail');
    if (fail === '409') throw new DtmFailure('scripted refusal');
    if (fail === '425') throw new DtmOngoing('scripted not yet');
    if (fail === '500') throw new Error('scripted crash');
  };
  const body = (req: express.Request) => req.body as { account: number; amount: number };
  const bank = (req: express.Request) => banks[req.params.db as DbKey];

  // Saga and msg: action adds `amount`, compensate takes it back.
  app.post(
    '/:db/adjust',
    rmHandler(async (req) => {
      const entry = record(req, `${req.params.db}/adjust`);
      await scripted(req);
      const { account, amount } = body(req);
      const b = bank(req);
      const bb = BranchBarrier.fromQuery(req.query);
      await bb.call(b.store, (tx) => b.adjust(tx, account, bb.op === 'compensate' ? -amount : amount));
      entry.end = Date.now();
    }),
  );
  // TCC: a debit (amount < 0) is frozen by try, settled by confirm, unfrozen by cancel; a credit waits for confirm.
  for (const op of ['try', 'confirm', 'cancel'] as const) {
    app.post(
      `/:db/tcc-${op}`,
      rmHandler(async (req) => {
        record(req, `${req.params.db}/tcc`);
        await scripted(req);
        const { account, amount } = body(req);
        const b = bank(req);
        const debit = Math.max(0, -amount);
        await BranchBarrier.fromQuery(req.query).call(b.store, async (tx) => {
          if (op === 'try' && debit > 0 && !(await b.freeze(tx, account, debit))) throw new DtmFailure('insufficient');
          if (op === 'confirm') await (debit > 0 ? b.settle(tx, account, debit) : b.adjust(tx, account, amount));
          if (op === 'cancel' && debit > 0) await b.unfreeze(tx, account, debit);
        });
      }),
    );
  }
  app.post(
    '/:db/xa',
    rmHandler(async (req) => {
      record(req, `${req.params.db}/xa`);
      const b = bank(req);
      await xaLocalTransaction(req.query, b.xa, async (conn) => {
        const { account, amount } = body(req);
        await b.adjust(conn, account, amount);
        await scripted(req);
      });
    }),
  );
  app.get('/:db/query-prepared', (req, res, next) => {
    record(req, `${req.params.db}/query-prepared`);
    void queryPreparedHandler(bank(req).store)(req, res, next);
  });
  return app;
};

beforeAll(async () => {
  redis = await startRedis();
  tm = await startTestTm(redis.url);
  dtm = `${tm.url}/api/dtmsvr`;

  pgAdmin = new pg.Client({ ...PG, database: 'postgres' });
  await pgAdmin.connect();
  await pgAdmin.query(`CREATE DATABASE ${dbName}`);
  pgPool = new pg.Pool({ ...PG, database: dbName, max: 20 });
  pgPool.on('error', () => undefined); // connections ended by DROP DATABASE … WITH (FORCE)
  const pgStore = new PgBarrierStore(pgPool);
  await pgStore.createTable();
  await pgPool.query(
    'CREATE TABLE account (id int PRIMARY KEY, balance bigint NOT NULL, frozen bigint NOT NULL DEFAULT 0)',
  );
  await pgPool.query('INSERT INTO account (id, balance) SELECT g, 1000 FROM generate_series(1, 10) g');
  pgXaEnabled = await preparedTransactionsOn(pgPool);
  const pgQuery = async (tx: unknown, sql: string, args: unknown[]) => (tx as pg.PoolClient).query(sql, args);
  banks.pg = {
    store: pgStore,
    xa: new PgXaResource(pgPool),
    adjust: async (tx, a, d) =>
      void (await pgQuery(tx, 'UPDATE account SET balance = balance + $1 WHERE id = $2', [d, a])),
    freeze: async (tx, a, m) =>
      (await pgQuery(tx, 'UPDATE account SET frozen = frozen + $1 WHERE id = $2 AND balance - frozen >= $1', [m, a]))
        .rowCount === 1,
    settle: async (tx, a, m) =>
      void (await pgQuery(tx, 'UPDATE account SET balance = balance - $1, frozen = frozen - $1 WHERE id = $2', [m, a])),
    unfreeze: async (tx, a, m) =>
      void (await pgQuery(tx, 'UPDATE account SET frozen = frozen - $1 WHERE id = $2', [m, a])),
    read: async (a) => {
      const r = (await pgPool.query<{ balance: string; frozen: string }>('SELECT * FROM account WHERE id = $1', [a]))
        .rows[0]!;
      return { balance: Number(r.balance), frozen: Number(r.frozen) };
    },
    preparedXids: async () =>
      (await pgPool.query<{ gid: string }>('SELECT gid FROM pg_prepared_xacts WHERE database = $1', [dbName])).rows.map(
        (r) => r.gid,
      ),
  };

  myAdmin = await mysql.createConnection(MY);
  await myAdmin.query(`CREATE DATABASE ${dbName}`);
  myPool = mysql.createPool({ ...MY, database: dbName, connectionLimit: 20 });
  const myStore = new MysqlBarrierStore(myPool, { table: 'barrier' });
  await myStore.createTable();
  await myPool.query(
    'CREATE TABLE account (id int PRIMARY KEY, balance bigint NOT NULL, frozen bigint NOT NULL DEFAULT 0)',
  );
  await myPool.query('INSERT INTO account (id, balance) VALUES ?', [
    Array.from({ length: 10 }, (_, i) => [i + 1, 1000]),
  ]);
  const myQuery = async (tx: unknown, sql: string, args: unknown[]) =>
    (await (tx as mysql.PoolConnection).query<mysql.ResultSetHeader>(sql, args))[0];
  banks.my = {
    store: myStore,
    xa: new MysqlXaResource(myPool, { table: 'barrier' }),
    adjust: async (tx, a, d) =>
      void (await myQuery(tx, 'UPDATE account SET balance = balance + ? WHERE id = ?', [d, a])),
    freeze: async (tx, a, m) =>
      (await myQuery(tx, 'UPDATE account SET frozen = frozen + ? WHERE id = ? AND balance - frozen >= ?', [m, a, m]))
        .affectedRows === 1,
    settle: async (tx, a, m) =>
      void (await myQuery(tx, 'UPDATE account SET balance = balance - ?, frozen = frozen - ? WHERE id = ?', [m, m, a])),
    unfreeze: async (tx, a, m) =>
      void (await myQuery(tx, 'UPDATE account SET frozen = frozen - ? WHERE id = ?', [m, a])),
    read: async (a) => {
      const [rows] = await myPool.query<mysql.RowDataPacket[]>('SELECT * FROM account WHERE id = ?', [a]);
      return { balance: Number(rows[0]!.balance), frozen: Number(rows[0]!.frozen) };
    },
    preparedXids: async () => (await myPool.query<mysql.RowDataPacket[]>('XA RECOVER'))[0].map((r) => String(r.data)),
  };

  server = await new Promise<Server>((resolve) => {
    const s = rmApp().listen(0, '127.0.0.1', () => resolve(s));
  });
  rm = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await tm?.close();
  await redis?.stop();
  await pgPool?.end();
  await pgAdmin?.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await pgAdmin?.end();
  await myPool?.end();
  await myAdmin?.query(`DROP DATABASE IF EXISTS ${dbName}`);
  await myAdmin?.end();
});

/** Polls the TM through the SDK's `query` until the transaction reaches `status`. */
const waitFor = async (gid: string, status: GlobalStatus, timeoutMs = 15_000) => {
  let last: unknown;
  return waitUntil(
    async () => {
      const q = await query(dtm, gid);
      last = q.transaction?.status;
      return last === status && q;
    },
    () => `${gid} did not reach ${status} (last: ${String(last)})`,
    { timeout: timeoutMs },
  );
};
/** The live marker before a check of absence: a message submitted now, delivered to its end. */
const liveMarker = async () => {
  const gid = gidOf('marker');
  await new Msg(dtm, gid).add(url('my', 'adjust'), { account: 3, amount: 0 }).submit();
  await waitFor(gid, 'succeed');
};
const url = (db: DbKey, route: string, script = '') => `${rm}/${db}/${route}${script ? `?${script}` : ''}`;
const balance = async (db: DbKey, account: number) => (await banks[db].read(account)).balance;

describe('newGid and query', () => {
  it('when asked for gids, then the TM hands out distinct 22-character ones', async () => {
    const gids = await Promise.all([newGid(dtm), newGid(dtm), newGid(dtm)]);
    expect(new Set(gids).size).toBe(3);
    for (const g of gids) expect(g).toMatch(/^[A-Za-z0-9]{22}$/);
  });

  it('when a gid is unknown, then query answers a null transaction; when known, its status and branches', async () => {
    expect(await query(dtm, gidOf('nobody'))).toEqual({ transaction: null, branches: [] });
    const gid = gidOf('q');
    await new Saga(dtm, gid).add(url('pg', 'adjust'), url('pg', 'adjust'), { account: 9, amount: 1 }).submit();
    const q = await waitFor(gid, 'succeed');
    expect(q.transaction).toMatchObject({ gid, trans_type: 'saga', status: 'succeed' });
    expect(q.branches.map((b) => `${b.branch_id}/${b.op}/${b.status}`)).toEqual([
      '01/compensate/prepared',
      '01/action/succeed',
    ]);
  });
});

describe('Saga', () => {
  it('when every action succeeds, then the saga succeeds and both databases changed', async () => {
    const gid = gidOf('saga');
    const [p0, m0] = [await balance('pg', 1), await balance('my', 1)];
    await new Saga(dtm, gid)
      .add(url('pg', 'adjust'), url('pg', 'adjust'), { account: 1, amount: -30 })
      .add(url('my', 'adjust'), url('my', 'adjust'), { account: 1, amount: 30 })
      .submit();
    await waitFor(gid, 'succeed');
    expect(callsOf(gid)).toEqual(['pg/adjust:action', 'my/adjust:action']);
    expect([await balance('pg', 1), await balance('my', 1)]).toEqual([p0 - 30, m0 + 30]);
  });

  it('when an action answers 409, then the steps done are compensated in reverse order and the saga fails', async () => {
    const gid = gidOf('saga-fail');
    const [p0, m0] = [await balance('pg', 2), await balance('my', 2)];
    await new Saga(dtm, gid)
      .add(url('pg', 'adjust'), url('pg', 'adjust'), { account: 2, amount: -30 })
      .add(url('my', 'adjust', 'fail=409'), url('my', 'adjust'), { account: 2, amount: 30 })
      .submit();
    const q = await waitFor(gid, 'failed');
    expect(q.transaction?.rollback_reason).toMatch(/FAILURE/);
    // The refused action is compensated too (§4.1 step 4): the barrier makes that a null compensation.
    expect(callsOf(gid)).toEqual([
      'pg/adjust:action',
      'my/adjust:action',
      'my/adjust:compensate',
      'pg/adjust:compensate',
    ]);
    expect([await balance('pg', 2), await balance('my', 2)]).toEqual([p0, m0]);
  });

  it('when concurrent with orders and wait_result, then submit resolves once it succeeded, with the ordered step last', async () => {
    const gid = gidOf('saga-conc');
    const saga = new Saga(dtm, gid, { waitResult: true, retryInterval: 1, timeoutToFail: 30 })
      .add(url('pg', 'adjust', 'delay=300'), url('pg', 'adjust'), { account: 3, amount: -10 })
      .add(url('my', 'adjust', 'delay=300'), url('my', 'adjust'), { account: 3, amount: 5 })
      .add(url('pg', 'adjust'), url('pg', 'adjust'), { account: 4, amount: 5 })
      .addBranchOrder(2, [0, 1])
      .enableConcurrent();
    expect(saga.toJSON()).toMatchObject({
      concurrent: true,
      custom_data: JSON.stringify({ orders: { 2: [0, 1] }, concurrent: true }),
      wait_result: true,
      retry_interval: 1,
      timeout_to_fail: 30,
    });
    await saga.submit();
    // wait_result: the answer came after the pass, so the saga is already finished.
    expect((await query(dtm, gid)).transaction?.status).toBe('succeed');
    const [a, b, c] = calls.get(gid)!;
    // Steps 0 and 1 (300 ms each) ran side by side: each started before the other ended.
    expect(Math.max(a!.at, b!.at)).toBeLessThan(Math.min(a!.end!, b!.end!));
    expect(c!.at).toBeGreaterThanOrEqual(Math.max(a!.end!, b!.end!)); // step 2 waited for both
  });

  it('when wait_result and an action fails, then submit rejects with DtmFailure after the rollback', async () => {
    const gid = gidOf('saga-wait-fail');
    const p0 = await balance('pg', 5);
    const submit = new Saga(dtm, gid, { waitResult: true })
      .add(url('pg', 'adjust'), url('pg', 'adjust'), { account: 5, amount: -30 })
      .add(url('my', 'adjust', 'fail=409'), url('my', 'adjust'), { account: 5, amount: 30 })
      .submit();
    await expect(submit).rejects.toBeInstanceOf(DtmFailure);
    expect((await query(dtm, gid)).transaction?.status).toBe('failed');
    expect(await balance('pg', 5)).toBe(p0);
  });

  it('when a finished saga is submitted again, then DtmFailure; when the TM is unreachable, DtmTransportError', async () => {
    const gid = gidOf('saga-again');
    const saga = new Saga(dtm, gid).add(url('pg', 'adjust', 'fail=409'), '', { account: 6, amount: 1 });
    await saga.submit();
    await waitFor(gid, 'failed');
    const again = await saga.submit().catch((e: unknown) => e);
    expect(again).toBeInstanceOf(DtmFailure);
    expect(again).toMatchObject({ status: 409 });
    const nowhere = new Saga('http://127.0.0.1:9/api/dtmsvr', gidOf('x'), { httpTimeoutMs: 2000 }).add(rm, rm);
    await expect(nowhere.submit()).rejects.toBeInstanceOf(DtmTransportError);
  });
});

describe('TCC', () => {
  const tccUrls = (db: DbKey, script = '') =>
    [url(db, 'tcc-try', script), url(db, 'tcc-confirm'), url(db, 'tcc-cancel')] as const;

  it('when every try succeeds, then the TM confirms each branch and the transfer is settled', async () => {
    const gid = gidOf('tcc');
    const [p0, m0] = [await banks.pg.read(7), await balance('my', 3)];
    const result = await tccGlobalTransaction(dtm, gid, { retryInterval: 1 }, async (tcc) => {
      await tcc.callBranch({ account: 7, amount: -40 }, ...tccUrls('pg'));
      expect((await banks.pg.read(7)).frozen).toBe(p0.frozen + 40); // tried: frozen, not yet taken
      await tcc.callBranch({ account: 3, amount: 40 }, ...tccUrls('my'));
      return 'done';
    });
    expect(result).toBe('done');
    await waitFor(gid, 'succeed');
    expect(callsOf(gid)).toEqual(['pg/tcc:try', 'my/tcc:try', 'my/tcc:confirm', 'pg/tcc:confirm']);
    expect(await banks.pg.read(7)).toEqual({ balance: p0.balance - 40, frozen: p0.frozen });
    expect(await balance('my', 3)).toBe(m0 + 40);
  });

  it('when a try answers 409, then the transaction rejects with DtmFailure and the TM cancels every branch', async () => {
    const gid = gidOf('tcc-fail');
    const p0 = await banks.pg.read(8);
    const run = tccGlobalTransaction(dtm, gid, async (tcc) => {
      await tcc.callBranch({ account: 8, amount: -40 }, ...tccUrls('pg'));
      await tcc.callBranch({ account: 4, amount: 40 }, ...tccUrls('my', 'fail=409'));
    });
    await expect(run).rejects.toBeInstanceOf(DtmFailure);
    const q = await waitFor(gid, 'failed');
    expect(q.transaction?.rollback_reason).toMatch(/branch 02 try/);
    expect(callsOf(gid)).toEqual(['pg/tcc:try', 'my/tcc:try', 'my/tcc:cancel', 'pg/tcc:cancel']);
    expect(await banks.pg.read(8)).toEqual(p0);
  });

  it('when a try answers 425, then callBranch throws DtmOngoing and the transaction is aborted', async () => {
    const gid = gidOf('tcc-ongoing');
    const run = tccGlobalTransaction(dtm, gid, (tcc) =>
      tcc.callBranch({ account: 9, amount: -1 }, ...tccUrls('pg', 'fail=425')),
    );
    await expect(run).rejects.toBeInstanceOf(DtmOngoing);
    await waitFor(gid, 'failed');
  });
});

describe('XA', () => {
  // PostgreSQL's default (max_prepared_transactions = 0) disables XA: fail loudly, never skip.
  beforeAll(() => requirePreparedTransactions(pgXaEnabled));
  /** One branch on MariaDB, one on PostgreSQL. */
  const xaDbs = (): [DbKey, DbKey] => ['my', 'pg'];

  it('when every branch succeeds, then the TM commits the prepared branches and the changes become visible', async () => {
    const gid = gidOf('xa');
    const [d1, d2] = xaDbs();
    const [b1, b2] = [await balance(d1, 5), await balance(d2, 6)];
    await xaGlobalTransaction(dtm, gid, { retryInterval: 1 }, async (xa) => {
      await xa.callBranch({ account: 5, amount: -25 }, url(d1, 'xa'));
      await xa.callBranch({ account: 6, amount: 25 }, url(d2, 'xa'));
      // Prepared, not committed: nobody sees the change yet.
      expect(await balance(d1, 5)).toBe(b1);
      expect(await banks[d1].preparedXids()).toContain(`${gid}-01`);
    });
    await waitFor(gid, 'succeed');
    expect(callsOf(gid)).toEqual([`${d1}/xa:action`, `${d2}/xa:action`, `${d1}/xa:commit`, `${d2}/xa:commit`]);
    expect(await balance(d1, 5)).toBe(b1 - 25);
    expect(await balance(d2, 6)).toBe(b2 + 25);
    expect([...(await banks.my.preparedXids()), ...(await banks.pg.preparedXids())]).not.toContain(`${gid}-01`);
  });

  it('when the second branch fails, then the first prepared branch is rolled back and nothing changes', async () => {
    const gid = gidOf('xa-fail');
    const [d1, d2] = xaDbs();
    const [b1, b2] = [await balance(d1, 5), await balance(d2, 6)];
    const run = xaGlobalTransaction(dtm, gid, async (xa) => {
      await xa.callBranch({ account: 5, amount: -25 }, url(d1, 'xa'));
      await xa.callBranch({ account: 6, amount: 25 }, url(d2, 'xa', 'fail=409'));
    });
    await expect(run).rejects.toBeInstanceOf(DtmFailure);
    await waitFor(gid, 'failed');
    // Branch 02 rolled back locally and never registered; the TM rolls back 01 only.
    expect(callsOf(gid)).toEqual([`${d1}/xa:action`, `${d2}/xa:action`, `${d1}/xa:rollback`]);
    expect([await balance(d1, 5), await balance(d2, 6)]).toEqual([b1, b2]);
    expect(await banks[d1].preparedXids()).not.toContain(`${gid}-01`);
    expect(await banks[d2].preparedXids()).not.toContain(`${gid}-02`);
  });

  it('when every branch is on PostgreSQL, then an XA branch on it commits too', async () => {
    const gid = gidOf('xa-pg');
    const b = await balance('pg', 10);
    await xaGlobalTransaction(dtm, gid, (xa) => xa.callBranch({ account: 10, amount: 7 }, url('pg', 'xa')));
    await waitFor(gid, 'succeed');
    expect(await balance('pg', 10)).toBe(b + 7);
  });
});

describe('Msg', () => {
  it('when a message is submitted directly, then each step is delivered in order', async () => {
    const gid = gidOf('msg');
    const m0 = await balance('my', 1);
    await new Msg(dtm, gid)
      .add(url('my', 'adjust'), { account: 1, amount: 3 })
      .add(url('my', 'adjust'), { account: 1, amount: 4 })
      .submit();
    await waitFor(gid, 'succeed');
    expect(callsOf(gid)).toEqual(['my/adjust:action', 'my/adjust:action']);
    expect(await balance('my', 1)).toBe(m0 + 7);
  });

  it('when doAndSubmitDb commits the local transaction, then the message is delivered', async () => {
    const gid = gidOf('msg-do');
    const [p0, m0] = [await balance('pg', 1), await balance('my', 2)];
    const msg = new Msg(dtm, gid).add(url('my', 'adjust'), { account: 2, amount: 15 });
    const value = await msg.doAndSubmitDb(url('pg', 'query-prepared'), banks.pg.store, async (tx) => {
      await banks.pg.adjust(tx, 1, -15);
      return 'debited';
    });
    expect(value).toBe('debited');
    await waitFor(gid, 'succeed');
    expect([await balance('pg', 1), await balance('my', 2)]).toEqual([p0 - 15, m0 + 15]);
  });

  it('when the local transaction fails with DtmFailure, then the message is aborted and nothing is delivered', async () => {
    const gid = gidOf('msg-refused');
    const msg = new Msg(dtm, gid).add(url('my', 'adjust'), { account: 2, amount: 15 });
    const run = msg.doAndSubmitDb(url('pg', 'query-prepared'), banks.pg.store, async () => {
      throw new DtmFailure('insufficient funds');
    });
    await expect(run).rejects.toBeInstanceOf(DtmFailure);
    await waitFor(gid, 'failed');
    await liveMarker();
    expect(callsOf(gid)).toEqual([]);
  });

  it('when the local transaction fails otherwise, then the AP asks the check-back itself and aborts', async () => {
    const gid = gidOf('msg-crash');
    const msg = new Msg(dtm, gid).add(url('my', 'adjust'), { account: 2, amount: 15 });
    const run = msg.doAndSubmitDb(url('pg', 'query-prepared'), banks.pg.store, async () => {
      throw new Error('connection reset');
    });
    await expect(run).rejects.toThrow('connection reset');
    await waitFor(gid, 'failed');
    expect(callsOf(gid)).toEqual(['pg/query-prepared:msg']);
  });

  it.each([
    ['committed', 'the TM finds the commit and delivers the message', true, 'succeed'],
    ['rolled back', 'the TM fails the message and delivers nothing', false, 'failed'],
  ] as const)(
    'when the AP dies before submit and its local transaction %s, then at the check-back %s',
    async (_what, _then, commit, final) => {
      const gid = gidOf('msg-checkback');
      const m0 = await balance('my', 4);
      const msg = new Msg(dtm, gid, { timeoutToFail: 1, retryInterval: 1 }).add(url('my', 'adjust'), {
        account: 4,
        amount: 11,
      });
      await msg.prepare(url('pg', 'query-prepared'));
      const local = new BranchBarrier('msg', gid, '00', 'msg').call(banks.pg.store, async (tx) => {
        await banks.pg.adjust(tx, 1, -11);
        if (!commit) throw new Error('crash');
      });
      await (commit ? local : local.catch(() => undefined));
      // … and no submit: the TM must find out by itself.
      await waitFor(gid, final, 15_000);
      expect(callsOf(gid)).toEqual(commit ? ['pg/query-prepared:msg', 'my/adjust:action'] : ['pg/query-prepared:msg']);
      expect(await balance('my', 4)).toBe(commit ? m0 + 11 : m0);
    },
  );
});
