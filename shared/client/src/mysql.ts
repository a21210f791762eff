import type { Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import {
  checkTableName,
  DEFAULT_BARRIER_TABLE,
  type BarrierKey,
  type BarrierRow,
  type SqlBarrierStore,
} from './barrier';
import type { XaResource } from './xa';

/**
 * The barrier table's DDL for MySQL and MariaDB (DTM's `sqls/dtmcli.barrier.mysql.sql`, without its `drop table`):
 * the database when `table` names one (`dtm_barrier.barrier`), and the table with UNIQUE(gid, branch_id, op,
 * barrier_id).
 */
export const mysqlBarrierDdl = (table: string = DEFAULT_BARRIER_TABLE): string[] => {
  checkTableName(table);
  const database = table.includes('.') ? table.split('.')[0] : undefined;
  return [
    ...(database ? [`CREATE DATABASE IF NOT EXISTS ${database} /*!40100 DEFAULT CHARACTER SET utf8mb4 */`] : []),
    `CREATE TABLE IF NOT EXISTS ${table} (
  id bigint(22) PRIMARY KEY AUTO_INCREMENT,
  trans_type varchar(45) DEFAULT '',
  gid varchar(128) DEFAULT '',
  branch_id varchar(128) DEFAULT '',
  op varchar(45) DEFAULT '',
  barrier_id varchar(45) DEFAULT '',
  reason varchar(45) DEFAULT '' COMMENT 'the branch type who insert this record',
  create_time datetime DEFAULT now(),
  update_time datetime DEFAULT now(),
  KEY (create_time),
  KEY (update_time),
  UNIQUE KEY (gid, branch_id, op, barrier_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4`,
  ];
};

/** Options of the MySQL/MariaDB stores. */
export interface MysqlBarrierOptions {
  /** The barrier table, `name` (in the pool's database) or `database.name`. Default `dtm_barrier.barrier`. */
  readonly table?: string;
}

/**
 * The barrier on MySQL or MariaDB (InnoDB) through a `mysql2/promise` Pool. Business functions get the
 * transaction's `PoolConnection`; run the business's statements on it.
 */
export class MysqlBarrierStore implements SqlBarrierStore<PoolConnection> {
  readonly kind = 'sql';
  readonly table: string;
  private readonly insertSql: string;
  private readonly reasonSql: string;

  constructor(
    readonly pool: Pool,
    opts: MysqlBarrierOptions = {},
  ) {
    this.table = checkTableName(opts.table ?? DEFAULT_BARRIER_TABLE);
    this.insertSql = `INSERT IGNORE INTO ${this.table} (trans_type, gid, branch_id, op, barrier_id, reason) VALUES (?, ?, ?, ?, ?, ?)`;
    this.reasonSql = `SELECT reason FROM ${this.table} WHERE gid = ? AND branch_id = ? AND op = ? AND barrier_id = ?`;
  }

  /** Creates the barrier table (and its database) if missing; see {@link mysqlBarrierDdl}. */
  async createTable(): Promise<void> {
    for (const sql of mysqlBarrierDdl(this.table)) await this.pool.query(sql);
  }

  /** A transaction on a pooled connection: `fn`, then COMMIT, or ROLLBACK when `fn` rejects. */
  async transaction<T>(fn: (tx: PoolConnection) => Promise<T>): Promise<T> {
    const conn = await this.pool.getConnection();
    let broken = false;
    try {
      await conn.beginTransaction();
      const result = await fn(conn);
      await conn.commit();
      return result;
    } catch (err) {
      await conn.rollback().catch(() => (broken = true));
      throw err;
    } finally {
      if (broken) conn.destroy();
      else conn.release();
    }
  }

  /** INSERT IGNORE; see {@link SqlBarrierStore.insertIgnore}. */
  async insertIgnore(tx: PoolConnection | null, r: BarrierRow): Promise<boolean> {
    const [res] = await (tx ?? this.pool).query<ResultSetHeader>(this.insertSql, [
      r.transType,
      r.gid,
      r.branchId,
      r.op,
      r.barrierId,
      r.reason,
    ]);
    return res.affectedRows > 0;
  }

  /** See {@link SqlBarrierStore.reasonOf}. */
  async reasonOf(tx: PoolConnection | null, k: BarrierKey): Promise<string | undefined> {
    // A locking read sees the latest committed row, not the transaction's REPEATABLE READ snapshot.
    const sql = tx ? `${this.reasonSql} LOCK IN SHARE MODE` : this.reasonSql;
    const [rows] = await (tx ?? this.pool).query<RowDataPacket[]>(sql, [k.gid, k.branchId, k.op, k.barrierId]);
    return (rows[0] as { reason?: string } | undefined)?.reason;
  }
}

/**
 * XA on MySQL or MariaDB (reference §4.3): `XA START` … `XA END`, `XA PREPARE`, then `XA COMMIT` or
 * `XA ROLLBACK`. MySQL limits the xid (`<gid>-<branch_id>`) to 64 bytes. Use with {@link xaLocalTransaction}.
 */
export class MysqlXaResource implements XaResource<PoolConnection> {
  readonly barrier: MysqlBarrierStore;

  constructor(
    readonly pool: Pool,
    opts: MysqlBarrierOptions = {},
  ) {
    this.barrier = new MysqlBarrierStore(pool, opts);
  }

  /** See {@link XaResource.runPrepared}. */
  async runPrepared<T>(xid: string, fn: (conn: PoolConnection) => Promise<T>): Promise<T> {
    const conn = await this.pool.getConnection();
    const id = conn.escape(xid);
    let state: 'none' | 'active' | 'idle' | 'prepared' = 'none';
    try {
      await conn.query(`XA START ${id}`);
      state = 'active';
      const result = await fn(conn);
      await conn.query(`XA END ${id}`);
      state = 'idle';
      await conn.query(`XA PREPARE ${id}`);
      state = 'prepared';
      return result;
    } catch (err) {
      if (state === 'active') await conn.query(`XA END ${id}`).catch(() => undefined);
      if (state === 'active' || state === 'idle') await conn.query(`XA ROLLBACK ${id}`).catch(() => undefined);
      throw err;
    } finally {
      // As DTM's XaDB/XaClose: never hand an XA session to the next user. Servers that keep a prepared XA attached to
      // its session (MySQL before 8.0.33 without xa_detach_on_prepare) detach it on disconnect; an active one rolls back.
      conn.destroy();
    }
  }

  /** See {@link XaResource.finish}. */
  async finish(xid: string, op: 'commit' | 'rollback'): Promise<void> {
    const verb = op === 'commit' ? 'XA COMMIT' : 'XA ROLLBACK';
    try {
      await this.pool.query(`${verb} ${this.pool.escape(xid)}`);
    } catch (err) {
      // XAER_NOTA: already committed or rolled back (a repeated phase 2), or never prepared.
      if (!(err instanceof Error && (err.message.includes('XAER_NOTA') || err.message.includes('does not exist')))) {
        throw err;
      }
    }
  }
}
