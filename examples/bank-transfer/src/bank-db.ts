import mysql from 'mysql2/promise';
import pg from 'pg';
import {
  DtmFailure,
  MysqlBarrierStore,
  MysqlXaResource,
  PgBarrierStore,
  PgXaResource,
  type SqlBarrierStore,
  type XaResource,
} from '@dtm-ts/client';

/** Where a bank keeps its books: a PostgreSQL or a MariaDB/MySQL database. */
export type DbSpec =
  | {
      readonly kind: 'postgres';
      readonly host: string;
      readonly port: number;
      readonly user: string;
      readonly database: string;
    }
  | {
      readonly kind: 'mysql';
      readonly host: string;
      readonly port: number;
      readonly user: string;
      readonly database: string;
    };

/** The few SQL operations the bank needs, the same on both databases (`?` placeholders). */
interface Sql<Tx> {
  readonly store: SqlBarrierStore<Tx>;
  /** XA branches on the same database, with the same barrier table. */
  readonly xa: XaResource<Tx>;
  /** Ids of the prepared XA transactions the server still holds. */
  preparedXids(): Promise<string[]>;
  /** Rolls back a prepared XA transaction left behind (cleanup: a database with one cannot be dropped). */
  rollbackPrepared(xid: string): Promise<void>;
  createBarrierTable(): Promise<void>;
  /** Runs a statement in the local transaction; resolves with the number of rows it changed. */
  exec(tx: Tx, sql: string, args: readonly unknown[]): Promise<number>;
  /** Runs a query outside any transaction. */
  select<T>(sql: string, args?: readonly unknown[]): Promise<T[]>;
  /** Runs a statement outside any transaction (schema, seed). */
  run(sql: string, args?: readonly unknown[]): Promise<void>;
  close(): Promise<void>;
}

/** `?` → `$1`, `$2`, … for PostgreSQL. */
const numbered = (sql: string): string => {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
};

const pgSql = (spec: DbSpec): Sql<pg.PoolClient> => {
  const pool = new pg.Pool({ host: spec.host, port: spec.port, user: spec.user, database: spec.database, max: 30 });
  // An idle client whose server connection ends (a restart, DROP DATABASE) emits 'error': don't crash for it.
  pool.on('error', () => undefined);
  const store = new PgBarrierStore(pool);
  return {
    store,
    xa: new PgXaResource(pool),
    preparedXids: async () =>
      (
        await pool.query<{ gid: string }>('SELECT gid FROM pg_prepared_xacts WHERE database = current_database()')
      ).rows.map((r) => r.gid),
    rollbackPrepared: async (xid) => void (await pool.query(`ROLLBACK PREPARED '${xid.replace(/'/g, "''")}'`)),
    createBarrierTable: () => store.createTable(),
    exec: async (tx, sql, args) => (await tx.query(numbered(sql), [...args])).rowCount ?? 0,
    select: async <T>(sql: string, args: readonly unknown[] = []) =>
      (await pool.query(numbered(sql), [...args])).rows as T[],
    run: async (sql, args = []) => void (await pool.query(numbered(sql), [...args])),
    close: () => pool.end(),
  };
};

const mysqlSql = (spec: DbSpec): Sql<mysql.PoolConnection> => {
  const pool = mysql.createPool({
    host: spec.host,
    port: spec.port,
    user: spec.user,
    database: spec.database,
    connectionLimit: 30,
  });
  // The barrier table lives in the bank's own database.
  const store = new MysqlBarrierStore(pool, { table: 'barrier' });
  return {
    store,
    xa: new MysqlXaResource(pool, { table: 'barrier' }),
    // XA RECOVER lists the whole server's prepared XA transactions: other databases' too.
    preparedXids: async () => (await pool.query<mysql.RowDataPacket[]>('XA RECOVER'))[0].map((r) => String(r['data'])),
    rollbackPrepared: async (xid) => void (await pool.query(`XA ROLLBACK ${pool.escape(xid)}`)),
    createBarrierTable: () => store.createTable(),
    exec: async (tx, sql, args) => (await tx.query<mysql.ResultSetHeader>(sql, [...args]))[0].affectedRows,
    select: async <T>(sql: string, args: readonly unknown[] = []) =>
      (await pool.query<mysql.RowDataPacket[]>(sql, [...args]))[0] as T[],
    run: async (sql, args = []) => void (await pool.query(sql, [...args])),
    close: () => pool.end(),
  };
};

/** One row of the ledger: every change of a balance, written in the same local transaction as the change. */
export interface LedgerEntry {
  readonly gid: string;
  readonly account: number;
  readonly delta: number;
}

/**
 * A bank's books: accounts (`balance`, and `frozen` for TCC holds) and a ledger of every balance change by gid. Every
 * method that takes `tx` runs inside a barrier's local transaction, so a change and its barrier rows commit together.
 */
export class BankDb<Tx = unknown> {
  private constructor(
    readonly name: string,
    private readonly sql: Sql<Tx>,
  ) {}

  /** Connects to an existing database (see {@link createDatabase}). */
  static open(name: string, spec: DbSpec): BankDb {
    return new BankDb<unknown>(name, spec.kind === 'postgres' ? pgSql(spec) : mysqlSql(spec));
  }

  /** The barrier store on this bank's database. */
  get store(): SqlBarrierStore<Tx> {
    return this.sql.store;
  }

  /** XA branches on this bank's database (same barrier table as {@link store}). */
  get xa(): XaResource<Tx> {
    return this.sql.xa;
  }

  /** Prepared XA transactions whose xid starts with `prefix` (an XA branch's xid is `<gid>-<branch_id>`). */
  async preparedXids(prefix: string): Promise<string[]> {
    return (await this.sql.preparedXids()).filter((x) => x.startsWith(prefix));
  }

  /** Rolls back prepared XA transaction `xid` (cleanup before dropping the database). */
  rollbackPrepared(xid: string): Promise<void> {
    return this.sql.rollbackPrepared(xid);
  }

  /** Creates the barrier table, the accounts (1..`accounts`, each holding `initial`) and the ledger. */
  async createSchema(accounts: number, initial: number): Promise<void> {
    await this.sql.createBarrierTable();
    await this.sql.run(
      'CREATE TABLE IF NOT EXISTS account (id int PRIMARY KEY, balance bigint NOT NULL, frozen bigint NOT NULL DEFAULT 0)',
    );
    await this.sql.run(
      'CREATE TABLE IF NOT EXISTS ledger (gid varchar(128) NOT NULL, account int NOT NULL, delta bigint NOT NULL, op varchar(16) NOT NULL)',
    );
    for (let id = 1; id <= accounts; id++)
      await this.sql.run('INSERT INTO account (id, balance) VALUES (?, ?)', [id, initial]);
  }

  private async change(tx: Tx, gid: string, op: string, account: number, delta: number, guard: boolean): Promise<void> {
    const changed = await this.sql.exec(
      tx,
      `UPDATE account SET balance = balance + ? WHERE id = ?${guard ? ' AND balance - frozen + ? >= 0' : ''}`,
      guard ? [delta, account, delta] : [delta, account],
    );
    if (changed !== 1) throw new DtmFailure(`${this.name}: account ${account} cannot give ${-delta}`);
    await this.sql.exec(tx, 'INSERT INTO ledger (gid, account, delta, op) VALUES (?, ?, ?, ?)', [
      gid,
      account,
      delta,
      op,
    ]);
  }

  /** Takes `amount` from `account`, refusing (DtmFailure) when its available balance is short. */
  debit(tx: Tx, gid: string, op: string, account: number, amount: number): Promise<void> {
    return this.change(tx, gid, op, account, -amount, true);
  }

  /** Adds `amount` to `account`. */
  credit(tx: Tx, gid: string, op: string, account: number, amount: number): Promise<void> {
    return this.change(tx, gid, op, account, amount, false);
  }

  /** Takes back a credit; the balance may go below zero (the money was spent meanwhile), the books stay exact. */
  reverseCredit(tx: Tx, gid: string, op: string, account: number, amount: number): Promise<void> {
    return this.change(tx, gid, op, account, -amount, false);
  }

  /** TCC try of a debit: holds `amount` (frozen) when the available balance covers it. */
  async freeze(tx: Tx, account: number, amount: number): Promise<void> {
    const changed = await this.sql.exec(
      tx,
      'UPDATE account SET frozen = frozen + ? WHERE id = ? AND balance - frozen >= ?',
      [amount, account, amount],
    );
    if (changed !== 1) throw new DtmFailure(`${this.name}: account ${account} cannot hold ${amount}`);
  }

  /** TCC confirm of a debit: the held amount leaves the account. */
  async settle(tx: Tx, gid: string, account: number, amount: number): Promise<void> {
    await this.sql.exec(tx, 'UPDATE account SET frozen = frozen - ? WHERE id = ?', [amount, account]);
    await this.change(tx, gid, 'confirm', account, -amount, false);
  }

  /** TCC cancel of a debit: the hold is released. */
  async unfreeze(tx: Tx, account: number, amount: number): Promise<void> {
    await this.sql.exec(tx, 'UPDATE account SET frozen = frozen - ? WHERE id = ?', [amount, account]);
  }

  /** Sum of balances and of holds. */
  async totals(): Promise<{ balance: number; frozen: number }> {
    const [r] = await this.sql.select<{ balance: string | number; frozen: string | number }>(
      'SELECT COALESCE(SUM(balance), 0) AS balance, COALESCE(SUM(frozen), 0) AS frozen FROM account',
    );
    return { balance: Number(r?.balance ?? 0), frozen: Number(r?.frozen ?? 0) };
  }

  /** Every account's balance and hold. */
  async accounts(): Promise<{ id: number; balance: number; frozen: number }[]> {
    const rows = await this.sql.select<{ id: number; balance: string | number; frozen: string | number }>(
      'SELECT id, balance, frozen FROM account ORDER BY id',
    );
    return rows.map((r) => ({ id: Number(r.id), balance: Number(r.balance), frozen: Number(r.frozen) }));
  }

  /** Net change per gid, from the ledger. */
  async netByGid(): Promise<Map<string, number>> {
    const rows = await this.sql.select<{ gid: string; net: string | number }>(
      'SELECT gid, SUM(delta) AS net FROM ledger GROUP BY gid',
    );
    return new Map(rows.map((r) => [r.gid, Number(r.net)]));
  }

  /**
   * Effects applied more than once: ledger rows sharing gid, account and op (every operation of a transfer
   * changes an account at most once, so a second row means a repeated call got past the barrier).
   */
  async duplicateEffects(): Promise<{ gid: string; account: number; op: string; n: number }[]> {
    const rows = await this.sql.select<{ gid: string; account: number; op: string; n: string | number }>(
      'SELECT gid, account, op, COUNT(*) AS n FROM ledger GROUP BY gid, account, op HAVING COUNT(*) > 1',
    );
    return rows.map((r) => ({ gid: r.gid, account: Number(r.account), op: r.op, n: Number(r.n) }));
  }

  /** Net change per account, from the ledger. */
  async netByAccount(): Promise<Map<number, number>> {
    const rows = await this.sql.select<{ account: number; net: string | number }>(
      'SELECT account, SUM(delta) AS net FROM ledger GROUP BY account',
    );
    return new Map(rows.map((r) => [Number(r.account), Number(r.net)]));
  }

  close(): Promise<void> {
    return this.sql.close();
  }
}

/** Creates database `spec.database` (connecting to the server's default database to do it). */
export const createDatabase = async (spec: DbSpec): Promise<void> => {
  checkName(spec.database);
  if (spec.kind === 'postgres') {
    const admin = new pg.Client({ host: spec.host, port: spec.port, user: spec.user, database: 'postgres' });
    await admin.connect();
    try {
      const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [spec.database]);
      if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${spec.database}`);
    } finally {
      await admin.end();
    }
  } else {
    const admin = await mysql.createConnection({ host: spec.host, port: spec.port, user: spec.user });
    try {
      await admin.query(`CREATE DATABASE IF NOT EXISTS ${spec.database}`);
    } finally {
      await admin.end();
    }
  }
};

/** Drops database `spec.database`, ending its connections. */
export const dropDatabase = async (spec: DbSpec): Promise<void> => {
  checkName(spec.database);
  if (spec.kind === 'postgres') {
    const admin = new pg.Client({ host: spec.host, port: spec.port, user: spec.user, database: 'postgres' });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${spec.database} WITH (FORCE)`);
    } finally {
      await admin.end();
    }
  } else {
    const admin = await mysql.createConnection({ host: spec.host, port: spec.port, user: spec.user });
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${spec.database}`);
    } finally {
      await admin.end();
    }
  }
};

const checkName = (name: string): void => {
  if (!/^[a-z_][a-z0-9_]*$/.test(name))
    throw new Error(`database name '${name}' must be lower-case letters, digits, _`);
};
