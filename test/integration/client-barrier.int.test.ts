import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BranchBarrier,
  DtmDuplicated,
  DtmFailure,
  MysqlBarrierStore,
  MysqlXaResource,
  PgBarrierStore,
  PgXaResource,
  RedisBarrierStore,
  xaLocalTransaction,
  type BarrierOutcome,
  type SqlBarrierStore,
  type XaResource,
} from '@dtm-ts/client';
import { startRedis, type RedisProcess } from '@dtm-ts/testing';
import { preparedTransactionsOn, requirePreparedTransactions } from '../support/postgres';
import { waitFor } from '../support/wait';

// The machine's PostgreSQL and MariaDB (trust auth / root without password); each run works in its own database.
const PG = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), user: 'postgres' };
const MY = { host: process.env.MYSQL_HOST ?? '127.0.0.1', port: Number(process.env.MYSQL_PORT ?? 3306), user: 'root' };
const dbName = () => `dtm_client_test_${randomBytes(5).toString('hex')}`;
const gidOf = (label: string) => `${label}-${randomBytes(6).toString('hex')}`;

/** One SQL database under test: the barrier store, an account table, and ways to look inside. */
interface SqlDb<Tx> {
  readonly label: string;
  readonly store: SqlBarrierStore<Tx>;
  readonly xa: XaResource<Tx>;
  /** Whether this server can prepare transactions (PostgreSQL needs max_prepared_transactions > 0). */
  readonly xaEnabled: boolean;
  adjust(tx: Tx, account: number, delta: number): Promise<void>;
  /** Keeps the local transaction open (and its locks held) for `ms`, on the server side. */
  hold(tx: Tx, ms: number): Promise<void>;
  balance(account: number): Promise<number>;
  rows(gid: string): Promise<string[]>;
  preparedXids(): Promise<string[]>;
  /** Sessions of this database waiting for a row lock: the live marker of a call blocked on a barrier row. */
  lockWaits(): Promise<number>;
  close(): Promise<void>;
}

const openPg = async (): Promise<SqlDb<pg.PoolClient>> => {
  const name = dbName();
  const admin = new pg.Client({ ...PG, database: 'postgres' });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const pool = new pg.Pool({ ...PG, database: name, max: 20 });
  // DROP DATABASE … WITH (FORCE) ends connections pg-pool is still closing: expected, not an error.
  pool.on('error', () => undefined);
  // The default table, dtm_barrier.barrier: the helper creates the schema too.
  const store = new PgBarrierStore(pool);
  await store.createTable();
  await pool.query('CREATE TABLE account (id int PRIMARY KEY, balance bigint NOT NULL)');
  await pool.query('INSERT INTO account VALUES (1, 1000), (2, 1000)');
  const xaEnabled = await preparedTransactionsOn(pool);
  return {
    label: 'PostgreSQL',
    store,
    xa: new PgXaResource(pool),
    xaEnabled,
    adjust: async (tx, account, delta) => {
      await tx.query('UPDATE account SET balance = balance + $1 WHERE id = $2', [delta, account]);
    },
    hold: async (tx, ms) => {
      await tx.query('SELECT pg_sleep($1)', [ms / 1000]);
    },
    balance: async (account) =>
      Number(
        (await pool.query<{ balance: string }>('SELECT balance FROM account WHERE id = $1', [account])).rows[0]!
          .balance,
      ),
    rows: async (gid) =>
      (
        await pool.query<{ r: string }>(
          `SELECT branch_id || '/' || op || '/' || barrier_id || '/' || reason AS r FROM dtm_barrier.barrier
           WHERE gid = $1 ORDER BY id`,
          [gid],
        )
      ).rows.map((r) => r.r),
    preparedXids: async () =>
      (await pool.query<{ gid: string }>('SELECT gid FROM pg_prepared_xacts WHERE database = $1', [name])).rows.map(
        (r) => r.gid,
      ),
    lockWaits: async () =>
      Number(
        (
          await pool.query<{ n: string }>(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
            [name],
          )
        ).rows[0]!.n,
      ),
    close: async () => {
      await pool.end();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
};

const openMaria = async (): Promise<SqlDb<mysql.PoolConnection>> => {
  const name = dbName();
  const admin = await mysql.createConnection({ ...MY });
  await admin.query(`CREATE DATABASE ${name}`);
  const pool = mysql.createPool({ ...MY, database: name, connectionLimit: 20 });
  const store = new MysqlBarrierStore(pool, { table: 'barrier' });
  await store.createTable();
  await pool.query('CREATE TABLE account (id int PRIMARY KEY, balance bigint NOT NULL) ENGINE=InnoDB');
  await pool.query('INSERT INTO account VALUES (1, 1000), (2, 1000)');
  return {
    label: 'MariaDB',
    store,
    xa: new MysqlXaResource(pool, { table: 'barrier' }),
    xaEnabled: true,
    adjust: async (tx, account, delta) => {
      await tx.query('UPDATE account SET balance = balance + ? WHERE id = ?', [delta, account]);
    },
    hold: async (tx, ms) => {
      await tx.query('SELECT SLEEP(?)', [ms / 1000]);
    },
    balance: async (account) => {
      const [rows] = await pool.query<mysql.RowDataPacket[]>('SELECT balance FROM account WHERE id = ?', [account]);
      return Number(rows[0]!.balance);
    },
    rows: async (gid) => {
      const [rows] = await pool.query<mysql.RowDataPacket[]>(
        `SELECT CONCAT(branch_id, '/', op, '/', barrier_id, '/', reason) AS r FROM barrier WHERE gid = ? ORDER BY id`,
        [gid],
      );
      return rows.map((r) => String(r.r));
    },
    preparedXids: async () => {
      const [rows] = await pool.query<mysql.RowDataPacket[]>('XA RECOVER');
      return rows.map((r) => String(r.data));
    },
    lockWaits: async () => {
      const [rows] = await pool.query<mysql.RowDataPacket[]>(
        // A row lock wait (InnoDB) or a metadata lock wait (the server), by a session of this test's database.
        `SELECT count(*) AS n FROM information_schema.PROCESSLIST p
         WHERE p.DB = ? AND (p.STATE LIKE '%lock%'
           OR p.ID IN (SELECT t.trx_mysql_thread_id FROM information_schema.INNODB_TRX t WHERE t.trx_state = 'LOCK WAIT'))`,
        [name],
      );
      return Number(rows[0]!.n);
    },
    close: async () => {
      await pool.end();
      await admin.query(`DROP DATABASE IF EXISTS ${name}`);
      await admin.end();
    },
  };
};

/** A business function that counts its runs. */
const counting = <Tx>(fn: (tx: Tx) => Promise<void>) => {
  const f = Object.assign(
    async (tx: Tx) => {
      f.runs++;
      await fn(tx);
    },
    { runs: 0 },
  );
  return f;
};

const executed = { status: 'executed', value: undefined };
const skipped = (reason: string) => ({ status: 'skipped', reason });

describe.each([
  ['PostgreSQL', openPg],
  ['MariaDB', openMaria],
] as const)('the SQL barrier on %s', (_label, open) => {
  let db: SqlDb<unknown>;
  beforeAll(async () => {
    db = await open();
  });
  afterAll(async () => {
    await db?.close();
  });

  const barrier = (gid: string, op: string, transType = 'saga', branchId = '01') =>
    new BranchBarrier(transType, gid, branchId, op);

  it('when an action arrives twice, then its business runs once and the repeat is skipped as a duplicate', async () => {
    const gid = gidOf('dup-action');
    const before = await db.balance(1);
    const busi = counting((tx) => db.adjust(tx, 1, -30));
    expect(await barrier(gid, 'action').call(db.store, busi)).toEqual(executed);
    expect(await barrier(gid, 'action').call(db.store, busi)).toEqual(skipped('duplicate'));
    expect(busi.runs).toBe(1);
    expect(await db.balance(1)).toBe(before - 30);
    expect(await db.rows(gid)).toEqual(['01/action/01/action']);
  });

  it('when a compensation arrives twice after its action, then it undoes the action exactly once', async () => {
    const gid = gidOf('dup-comp');
    const before = await db.balance(1);
    await barrier(gid, 'action').call(db.store, (tx) => db.adjust(tx, 1, -30));
    const undo = counting((tx) => db.adjust(tx, 1, 30));
    expect(await barrier(gid, 'compensate').call(db.store, undo)).toEqual(executed);
    expect(await barrier(gid, 'compensate').call(db.store, undo)).toEqual(skipped('duplicate'));
    expect(undo.runs).toBe(1);
    expect(await db.balance(1)).toBe(before);
  });

  it.each([
    ['saga', 'action', 'compensate'],
    ['tcc', 'try', 'cancel'],
  ])(
    'when a %s %s comes after its %s, then the compensation is null and the late forward op is refused as hanging',
    async (transType, forward, compensation) => {
      const gid = gidOf(`hang-${transType}`);
      const before = await db.balance(1);
      const undo = counting((tx) => db.adjust(tx, 1, 30));
      expect(await barrier(gid, compensation, transType).call(db.store, undo)).toEqual(skipped('null-compensation'));
      expect(undo.runs).toBe(0);
      // The compensation wrote its origin's row, so the forward op finds it taken.
      expect(await db.rows(gid)).toEqual([`01/${forward}/01/${compensation}`, `01/${compensation}/01/${compensation}`]);
      const late = counting((tx) => db.adjust(tx, 1, -30));
      expect(await barrier(gid, forward, transType).call(db.store, late)).toEqual(skipped('hanging'));
      expect(late.runs).toBe(0);
      expect(await db.balance(1)).toBe(before);
    },
  );

  it('when the business fails, then the barrier rows roll back with it, a retry runs it, and a compensation after a refused action is null', async () => {
    const gid = gidOf('busi-fails');
    const before = await db.balance(1);
    await expect(
      barrier(gid, 'action').call(db.store, async (tx) => {
        await db.adjust(tx, 1, -30);
        throw new DtmFailure('insufficient funds');
      }),
    ).rejects.toBeInstanceOf(DtmFailure);
    expect(await db.rows(gid)).toEqual([]);
    expect(await db.balance(1)).toBe(before);
    // The TM compensates a refused action too (§4.1): with no committed action, there is nothing to undo.
    const undo = counting((tx) => db.adjust(tx, 1, 30));
    expect(await barrier(gid, 'compensate').call(db.store, undo)).toEqual(skipped('null-compensation'));
    expect(undo.runs).toBe(0);
    // A different gid whose first attempt hit a transient error: the retry runs the business.
    const gid2 = gidOf('busi-retry');
    await expect(
      barrier(gid2, 'action').call(db.store, () => Promise.reject(new Error('deadlock, try again'))),
    ).rejects.toThrow('deadlock');
    expect(await barrier(gid2, 'action').call(db.store, (tx) => db.adjust(tx, 1, -5))).toEqual(executed);
    expect(await db.balance(1)).toBe(before - 5);
  });

  it('when one action is delivered 8 times at once, then exactly one runs the business and the rest wait and skip', async () => {
    const gid = gidOf('race');
    const before = await db.balance(2);
    const busi = counting(async (tx) => {
      await db.adjust(tx, 2, -10);
      await db.hold(tx, 200); // keep the barrier row's lock while the others arrive
    });
    const outcomes = await Promise.all(Array.from({ length: 8 }, () => barrier(gid, 'action').call(db.store, busi)));
    expect(outcomes.filter((o) => o.status === 'executed')).toHaveLength(1);
    expect(outcomes.filter((o) => o.status === 'skipped' && o.reason === 'duplicate')).toHaveLength(7);
    expect(busi.runs).toBe(1);
    expect(await db.balance(2)).toBe(before - 10);
  });

  it('when a compensation races its still-running action, then it waits for the action to commit and undoes it', async () => {
    const gid = gidOf('race-comp');
    const before = await db.balance(2);
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    const action = barrier(gid, 'action').call(db.store, async (tx) => {
      entered();
      await db.adjust(tx, 2, -10);
      await db.hold(tx, 300);
    });
    await inside; // the action's barrier rows are in (the business runs after them), its transaction still open
    const compensation = barrier(gid, 'compensate').call(db.store, (tx) => db.adjust(tx, 2, 10));
    expect(await Promise.all([action, compensation])).toEqual([executed, executed]);
    expect(await db.balance(2)).toBe(before);
  });

  it('when a null compensation is still committing while copies of its action arrive, then they wait and are all refused as hanging', async () => {
    const gid = gidOf('race-hang');
    const before = await db.balance(2);
    const undo = counting((tx) => db.adjust(tx, 2, 10));
    // The null compensation's transaction stays open a while after writing its rows (origin row included).
    let written!: () => void;
    const rowsWritten = new Promise<void>((r) => (written = r));
    const compensation = db.store.transaction(async (tx) => {
      const outcome = await barrier(gid, 'compensate').callInTransaction(db.store, tx, undo);
      written();
      await db.hold(tx, 300);
      return outcome;
    });
    await rowsWritten;
    const late = counting((tx) => db.adjust(tx, 2, -10));
    const actions = Promise.all(Array.from({ length: 4 }, () => barrier(gid, 'action').call(db.store, late)));
    expect(await compensation).toEqual(skipped('null-compensation'));
    expect(await actions).toEqual(Array.from({ length: 4 }, () => skipped('hanging')));
    expect(undo.runs + late.runs).toBe(0);
    expect(await db.balance(2)).toBe(before);
  });

  describe('msg query-prepared', () => {
    const msgBarrier = (gid: string) => new BranchBarrier('msg', gid, '00', 'msg');
    const checkBack = (gid: string) => BranchBarrier.fromQuery({ gid, trans_type: 'msg', branch_id: '00', op: 'msg' });

    it('when the local transaction committed, then the check-back answers success, again and again', async () => {
      const gid = gidOf('qp-commit');
      expect(await msgBarrier(gid).call(db.store, (tx) => db.adjust(tx, 1, -1))).toEqual(executed);
      await expect(checkBack(gid).queryPrepared(db.store)).resolves.toBeUndefined();
      await expect(checkBack(gid).queryPrepared(db.store)).resolves.toBeUndefined();
      expect(await db.rows(gid)).toEqual(['00/msg/01/msg']);
    });

    it('when the local transaction rolled back, then the check-back answers FAILURE and a late retry is refused as duplicated', async () => {
      const gid = gidOf('qp-rollback');
      await expect(
        msgBarrier(gid).call(db.store, async (tx) => {
          await db.adjust(tx, 1, -1);
          throw new Error('crash before commit');
        }),
      ).rejects.toThrow('crash');
      await expect(checkBack(gid).queryPrepared(db.store)).rejects.toBeInstanceOf(DtmFailure);
      expect(await db.rows(gid)).toEqual(['00/msg/01/rollback']);
      // The check-back sealed the gid: a local transaction arriving now must not commit (the TM already failed it).
      const late = counting((tx) => db.adjust(tx, 1, -1));
      await expect(msgBarrier(gid).call(db.store, late)).rejects.toBeInstanceOf(DtmDuplicated);
      expect(late.runs).toBe(0);
      await expect(checkBack(gid).queryPrepared(db.store)).rejects.toBeInstanceOf(DtmFailure);
    });

    it.each([
      ['commits', 'answers success', true],
      ['rolls back', 'answers FAILURE', false],
    ])(
      'when the local transaction is still open, then the check-back waits until it ends; if it %s, it %s',
      async (_ends, _answers, commit) => {
        const gid = gidOf('qp-open');
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        let entered!: () => void;
        const inside = new Promise<void>((r) => (entered = r));
        const local = msgBarrier(gid).call(db.store, async (tx) => {
          await db.adjust(tx, 1, -1);
          entered();
          await gate;
          if (!commit) throw new Error('the AP gave up');
        });
        await inside;
        let settled = false;
        const answer = checkBack(gid)
          .queryPrepared(db.store)
          .then(
            () => 'success',
            (e: unknown) => (e instanceof DtmFailure ? 'FAILURE' : e),
          )
          .finally(() => (settled = true));
        // The live marker is the check-back's lock wait; when the server is too busy to show it (a chaos run
        // beside this one has made the MariaDB one miss it for 20 s), 3 s without an answer is the marker instead.
        const waitingSince = Date.now();
        await waitFor(
          async () => Date.now() - waitingSince > 3_000 || (await db.lockWaits()) > 0,
          'the check-back waiting for the barrier row lock',
        );
        expect(settled).toBe(false); // blocked on the open transaction's barrier row
        release();
        await (commit ? expect(local).resolves.toEqual(executed) : expect(local).rejects.toThrow('gave up'));
        expect(await answer).toBe(commit ? 'success' : 'FAILURE');
      },
    );
  });

  describe('XA branches', () => {
    it('when an XA rollback comes before its action, then the late action is refused and nothing stays prepared', async () => {
      requirePreparedTransactions(db.xaEnabled);
      const gid = gidOf('xa-hang');
      const before = await db.balance(1);
      const q = (op: string) => ({
        gid,
        trans_type: 'xa',
        branch_id: '01',
        op,
        dtm: 'http://127.0.0.1:9/unused',
        phase2_url: 'http://127.0.0.1:9/xa',
      });
      await xaLocalTransaction(q('rollback'), db.xa, async () => undefined);
      const busi = counting((tx) => db.adjust(tx, 1, -30));
      await expect(xaLocalTransaction(q('action'), db.xa, busi)).rejects.toThrow(/rolled back before its action/);
      expect(busi.runs).toBe(0);
      expect(await db.preparedXids()).not.toContain(`${gid}-01`);
      expect(await db.balance(1)).toBe(before);
      // Phase 2 repeats are harmless: commit or rollback of an unknown xid is done.
      await xaLocalTransaction(q('rollback'), db.xa, async () => undefined);
      await xaLocalTransaction(q('commit'), db.xa, async () => undefined);
    });
  });
});

describe('the barrier DDL helpers', () => {
  it('when the PostgreSQL table is created twice, then the second is a no-op and the unique key is named uniq_barrier', async () => {
    const name = dbName();
    const admin = new pg.Client({ ...PG, database: 'postgres' });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    const pool = new pg.Pool({ ...PG, database: name });
    pool.on('error', () => undefined);
    try {
      const store = new PgBarrierStore(pool, { table: 'bank.barrier' });
      await store.createTable();
      await store.createTable();
      const c = await pool.query<{ conname: string; def: string }>(
        `SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = 'bank.barrier'::regclass AND contype = 'u'`,
      );
      expect(c.rows).toEqual([{ conname: 'uniq_barrier', def: 'UNIQUE (gid, branch_id, op, barrier_id)' }]);
    } finally {
      await pool.end();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });

  it('when a table name is not a plain identifier, then the store refuses it', () => {
    expect(() => new PgBarrierStore(new pg.Pool(), { table: 'x; drop table y' })).toThrow(TypeError);
  });
});

describe('the Redis barrier', () => {
  let server: RedisProcess;
  let redis: Redis;
  let store: RedisBarrierStore;
  beforeAll(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
    store = new RedisBarrierStore(redis, { expireS: 600 });
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  const account = async (balance: number) => {
    const key = gidOf('balance');
    await redis.set(key, balance);
    return key;
  };
  const bb = (gid: string, op: string, transType = 'saga') => new BranchBarrier(transType, gid, '01', op);
  const adjust = (gid: string, op: string, key: string, amount: number): Promise<BarrierOutcome<void>> =>
    bb(gid, op).redisCheckAdjustAmount(store, key, amount);

  it('when an action arrives twice, then the amount is taken once', async () => {
    const [gid, key] = [gidOf('r-dup'), await account(100)];
    expect(await adjust(gid, 'action', key, -30)).toEqual(executed);
    expect(await adjust(gid, 'action', key, -30)).toEqual(skipped('duplicate'));
    expect(await redis.get(key)).toBe('70');
  });

  it('when a compensation arrives twice, then it gives the amount back once', async () => {
    const [gid, key] = [gidOf('r-dup-comp'), await account(100)];
    await adjust(gid, 'action', key, -30);
    expect(await adjust(gid, 'compensate', key, 30)).toEqual(executed);
    expect(await adjust(gid, 'compensate', key, 30)).toEqual(skipped('duplicate'));
    expect(await redis.get(key)).toBe('100');
  });

  it('when the cancel comes before the try, then it is a null compensation and the late try is refused as hanging', async () => {
    const [gid, key] = [gidOf('r-hang'), await account(100)];
    expect(await bb(gid, 'cancel', 'tcc').redisCheckAdjustAmount(store, key, 30)).toEqual(skipped('null-compensation'));
    expect(await redis.get(`${gid}-01-try-01`)).toBe('rollback');
    expect(await bb(gid, 'try', 'tcc').redisCheckAdjustAmount(store, key, -30)).toEqual(skipped('hanging'));
    expect(await redis.get(key)).toBe('100');
  });

  it('when 20 copies of one action race, then exactly one takes the amount', async () => {
    const [gid, key] = [gidOf('r-race'), await account(100)];
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => adjust(gid, 'action', key, -10)));
    expect(outcomes.filter((o) => o.status === 'executed')).toHaveLength(1);
    expect(await redis.get(key)).toBe('90');
  });

  it('when the balance is short or missing, then FAILURE and nothing is marked, so a later retry can still run', async () => {
    const [gid, key] = [gidOf('r-short'), await account(10)];
    await expect(adjust(gid, 'action', key, -30)).rejects.toBeInstanceOf(DtmFailure);
    await expect(adjust(gidOf('r-missing'), 'action', gidOf('nokey'), -1)).rejects.toBeInstanceOf(DtmFailure);
    expect(await redis.exists(`${gid}-01-action-01`)).toBe(0);
    await redis.incrby(key, 50);
    expect(await adjust(gid, 'action', key, -30)).toEqual(executed);
    expect(await redis.get(key)).toBe('30');
  });

  it('when a message step committed, then its check-back answers success; when it never ran, FAILURE, and it can no longer run', async () => {
    const key = await account(100);
    const msg = (gid: string) => new BranchBarrier('msg', gid, '00', 'msg');
    const ran = gidOf('r-msg-ok');
    expect(await msg(ran).redisCheckAdjustAmount(store, key, -5)).toEqual(executed);
    await expect(msg(ran).queryPrepared(store)).resolves.toBeUndefined();
    await expect(msg(ran).redisCheckAdjustAmount(store, key, -5)).rejects.toBeInstanceOf(DtmDuplicated);
    const never = gidOf('r-msg-never');
    await expect(msg(never).queryPrepared(store)).rejects.toBeInstanceOf(DtmFailure);
    await expect(msg(never).redisCheckAdjustAmount(store, key, -5)).rejects.toBeInstanceOf(DtmDuplicated);
    expect(await redis.get(key)).toBe('95');
    // A Redis step is one script: it is never "still open", so the check-back's answer is final at once.
  });
});
