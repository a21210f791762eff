import type { Pool, PoolClient } from 'pg';
import {
  checkTableName,
  DEFAULT_BARRIER_TABLE,
  type BarrierKey,
  type BarrierRow,
  type SqlBarrierStore,
} from './barrier';
import type { XaResource } from './xa';

/**
 * The barrier table's DDL for PostgreSQL (DTM's `sqls/dtmcli.barrier.postgres.sql`, without its `drop table`):
 * the schema when `table` names one, the id sequence, and the table with its unique key as constraint
 * `uniq_barrier`, which the barrier's `ON CONFLICT ON CONSTRAINT uniq_barrier` names. Constraint names live in the
 * schema's namespace, so keep one barrier table per schema.
 */
export const pgBarrierDdl = (table: string = DEFAULT_BARRIER_TABLE): string[] => {
  checkTableName(table);
  const schema = table.includes('.') ? table.split('.')[0] : undefined;
  const seq = `${table}_seq`;
  return [
    ...(schema ? [`CREATE SCHEMA IF NOT EXISTS ${schema}`] : []),
    `CREATE SEQUENCE IF NOT EXISTS ${seq}`,
    `CREATE TABLE IF NOT EXISTS ${table} (
  id bigint NOT NULL DEFAULT nextval('${seq}'),
  trans_type varchar(45) DEFAULT '',
  gid varchar(128) DEFAULT '',
  branch_id varchar(128) DEFAULT '',
  op varchar(45) DEFAULT '',
  barrier_id varchar(45) DEFAULT '',
  reason varchar(45) DEFAULT '',
  create_time timestamp(0) with time zone DEFAULT now(),
  update_time timestamp(0) with time zone DEFAULT now(),
  PRIMARY KEY (id),
  CONSTRAINT uniq_barrier UNIQUE (gid, branch_id, op, barrier_id)
)`,
  ];
};

/** Options of the PostgreSQL stores. */
export interface PgBarrierOptions {
  /** The barrier table, `name` or `schema.name`. Default `dtm_barrier.barrier`, as DTM. */
  readonly table?: string;
}

/**
 * The barrier on PostgreSQL through a `pg` Pool. Business functions get the transaction's `PoolClient`; run the
 * business's statements on it, so they commit or roll back with the barrier rows.
 */
export class PgBarrierStore implements SqlBarrierStore<PoolClient> {
  readonly kind = 'sql';
  readonly table: string;
  private readonly insertSql: string;
  private readonly reasonSql: string;

  constructor(
    readonly pool: Pool,
    opts: PgBarrierOptions = {},
  ) {
    this.table = checkTableName(opts.table ?? DEFAULT_BARRIER_TABLE);
    this.insertSql =
      `INSERT INTO ${this.table} (trans_type, gid, branch_id, op, barrier_id, reason) VALUES ($1, $2, $3, $4, $5, $6) ` +
      'ON CONFLICT ON CONSTRAINT uniq_barrier DO NOTHING';
    this.reasonSql = `SELECT reason FROM ${this.table} WHERE gid = $1 AND branch_id = $2 AND op = $3 AND barrier_id = $4`;
  }

  /** Creates the barrier table (and its schema and sequence) if missing; see {@link pgBarrierDdl}. */
  async createTable(): Promise<void> {
    for (const sql of pgBarrierDdl(this.table)) await this.pool.query(sql);
  }

  /** BEGIN on a pooled client, `fn`, then COMMIT, or ROLLBACK when `fn` rejects. */
  async transaction<T>(fn: (tx: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => (broken = e));
      throw err;
    } finally {
      // A client whose ROLLBACK failed is in an unknown state: destroy it rather than hand it to the next caller.
      client.release(broken);
    }
  }

  /** INSERT … ON CONFLICT DO NOTHING; see {@link SqlBarrierStore.insertIgnore}. */
  async insertIgnore(tx: PoolClient | null, r: BarrierRow): Promise<boolean> {
    const res = await (tx ?? this.pool).query(this.insertSql, [
      r.transType,
      r.gid,
      r.branchId,
      r.op,
      r.barrierId,
      r.reason,
    ]);
    return (res.rowCount ?? 0) > 0;
  }

  /** See {@link SqlBarrierStore.reasonOf}. */
  async reasonOf(tx: PoolClient | null, k: BarrierKey): Promise<string | undefined> {
    // FOR SHARE reads the latest committed row whatever the transaction's snapshot.
    const sql = tx ? `${this.reasonSql} FOR SHARE` : this.reasonSql;
    const res = await (tx ?? this.pool).query<{ reason: string }>(sql, [k.gid, k.branchId, k.op, k.barrierId]);
    return res.rows[0]?.reason;
  }
}

/**
 * XA on PostgreSQL (reference §4.3): `BEGIN` … `PREPARE TRANSACTION '<xid>'`, then `COMMIT PREPARED` or
 * `ROLLBACK PREPARED`. Needs `max_prepared_transactions` > 0 on the server (the default, 0, disables
 * PREPARE TRANSACTION; changing it needs a restart). Use with {@link xaLocalTransaction}.
 */
export class PgXaResource implements XaResource<PoolClient> {
  readonly barrier: PgBarrierStore;

  constructor(
    readonly pool: Pool,
    opts: PgBarrierOptions = {},
  ) {
    this.barrier = new PgBarrierStore(pool, opts);
  }

  /** See {@link XaResource.runPrepared}. */
  async runPrepared<T>(xid: string, fn: (conn: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      // After PREPARE TRANSACTION the session is free again; the prepared transaction lives on its own.
      await client.query(`PREPARE TRANSACTION ${client.escapeLiteral(xid)}`);
      return result;
    } catch (err) {
      // A failed PREPARE TRANSACTION already rolled back; ROLLBACK then only warns.
      await client.query('ROLLBACK').catch((e: Error) => (broken = e));
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /** See {@link XaResource.finish}. */
  async finish(xid: string, op: 'commit' | 'rollback'): Promise<void> {
    const client = await this.pool.connect();
    try {
      const verb = op === 'commit' ? 'COMMIT PREPARED' : 'ROLLBACK PREPARED';
      await client.query(`${verb} ${client.escapeLiteral(xid)}`);
    } catch (err) {
      // Already committed or rolled back (a repeated phase 2), or never prepared: nothing left to do.
      if (!(err instanceof Error && err.message.includes('does not exist'))) throw err;
    } finally {
      client.release();
    }
  }
}
