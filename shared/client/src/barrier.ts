import { DtmBadRequest, DtmDuplicated, DtmFailure } from './errors';
import { queryValue, type QueryLike } from './query-params';
import { DTM_METADATA, metadataValue, type MetadataLike } from './grpc-rm/metadata';

/** Why the barrier skipped the business (the handler should still answer SUCCESS). */
export type BarrierSkip =
  /** The same operation already ran (a retry, or a duplicate delivered by the network). */
  | 'duplicate'
  /** A compensation (cancel, compensate, rollback) whose forward operation never committed: nothing to undo. */
  | 'null-compensation'
  /** A forward operation (try, action) arriving after its compensation already ran: too late, refused. */
  | 'hanging';

/** What a barrier call did: ran the business (with its result), or skipped it and why. */
export type BarrierOutcome<T> =
  { readonly status: 'executed'; readonly value: T } | { readonly status: 'skipped'; readonly reason: BarrierSkip };

/** One row of the barrier table (reference §7). */
export interface BarrierRow {
  readonly transType: string;
  readonly gid: string;
  readonly branchId: string;
  readonly op: string;
  readonly barrierId: string;
  /** The op that wrote the row: equal to `op`, or the compensation that wrote its origin's row, or `rollback`. */
  readonly reason: string;
}

/** The unique key of a barrier row: (gid, branch_id, op, barrier_id). */
export type BarrierKey = Pick<BarrierRow, 'gid' | 'branchId' | 'op' | 'barrierId'>;

/**
 * A SQL database holding the barrier table: what the barrier algorithm needs from it. {@link PgBarrierStore}
 * (pg) and {@link MysqlBarrierStore} (mysql2, MySQL and MariaDB) implement it; implement it for another database.
 *
 * @typeParam Tx the connection a local transaction runs on; the business function receives it
 */
export interface SqlBarrierStore<Tx> {
  readonly kind: 'sql';
  /** Runs `fn` in a new local transaction: commits when it resolves, rolls back when it rejects. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /**
   * Inserts `row` unless a row with its key exists (insert-ignore); true when inserted. While another open
   * transaction holds the same key, it waits for that one to end: this is what makes the barrier race-free.
   * `tx` null: on its own, outside any transaction.
   */
  insertIgnore(tx: Tx | null, row: BarrierRow): Promise<boolean>;
  /** The `reason` of the row with this key, or undefined when there is none. */
  reasonOf(tx: Tx | null, key: BarrierKey): Promise<string | undefined>;
}

/**
 * A Redis holding barrier keys: implemented by {@link RedisBarrierStore}. Declared here so the barrier does not
 * depend on a Redis client.
 */
export interface RedisBarrierLike {
  readonly kind: 'redis';
  /** See {@link BranchBarrier.redisCheckAdjustAmount}. */
  checkAdjustAmount(bb: BranchBarrier, key: string, amount: number): Promise<BarrierOutcome<void>>;
  /** See {@link BranchBarrier.queryPrepared}. */
  queryPrepared(bb: BranchBarrier): Promise<void>;
}

/** The forward op each compensation undoes (reference §7, step 1). */
const ORIGIN_OP: Readonly<Record<string, string>> = { cancel: 'try', compensate: 'action', rollback: 'action' };

/** Branch 00, op `msg`, barrier 01: the row a two-phase message's local transaction writes (§4.4). */
export const MSG_BARRIER = { branchId: '00', op: 'msg', barrierId: '01' } as const;

/**
 * The sub-transaction barrier of one branch request (reference §7): makes a branch handler safe under duplicate
 * requests, compensations that arrive before (or without) their action, and actions that arrive after their
 * compensation. Make one per request with {@link BranchBarrier.fromQuery}, then run the business through
 * {@link BranchBarrier.call}:
 *
 * ```ts
 * app.post('/TransOut', express.json(), rmHandler(async (req) => {
 *   await BranchBarrier.fromQuery(req.query).call(store, async (tx) => {
 *     await tx.query('UPDATE account SET balance = balance - $1 WHERE id = $2', [req.body.amount, req.body.id]);
 *   });
 * }));
 * ```
 */
export class BranchBarrier {
  private barrierCount = 0;

  /** @throws {@link DtmBadRequest} when any of the four is empty */
  constructor(
    readonly transType: string,
    readonly gid: string,
    readonly branchId: string,
    readonly op: string,
  ) {
    if (!transType || !gid || !branchId || !op) {
      throw new DtmBadRequest(
        `invalid trans info: trans_type '${transType}', gid '${gid}', branch_id '${branchId}', op '${op}'`,
      );
    }
  }

  /**
   * The barrier of the request whose query is `query` (express's `req.query` or a `URLSearchParams`): the TM sends
   * `gid`, `trans_type`, `branch_id` and `op` on every branch call.
   *
   * @throws {@link DtmBadRequest} when one is missing ({@link rmHandler} answers 400)
   */
  static fromQuery(query: QueryLike): BranchBarrier {
    return new BranchBarrier(
      queryValue(query, 'trans_type'),
      queryValue(query, 'gid'),
      queryValue(query, 'branch_id'),
      queryValue(query, 'op'),
    );
  }

  /**
   * The barrier of a gRPC branch call, from its metadata (grpc-js `call.metadata`): the TM sends `dtm-gid`,
   * `dtm-trans_type`, `dtm-branch_id` and `dtm-op` on every call (DTM's `BarrierFromGrpc`).
   *
   * @throws {@link DtmBadRequest} when one is missing ({@link grpcRmHandler} answers INVALID_ARGUMENT)
   */
  static fromGrpcMetadata(md: MetadataLike): BranchBarrier {
    return new BranchBarrier(
      metadataValue(md, DTM_METADATA.transType),
      metadataValue(md, DTM_METADATA.gid),
      metadataValue(md, DTM_METADATA.branchId),
      metadataValue(md, DTM_METADATA.op),
    );
  }

  /** The next barrier id: `01` for the first barrier call of this object, then `02`, … (one per call). */
  nextBarrierId(): string {
    this.barrierCount++;
    return String(this.barrierCount).padStart(2, '0');
  }

  /**
   * Runs `busi` in a new local transaction of `store`, behind the barrier. The barrier rows and the business
   * commit together, or roll back together when `busi` rejects (then its error is rethrown, so a retry runs the
   * business again).
   *
   * @returns `executed` with busi's value, or `skipped` (duplicate, null compensation, hanging): answer SUCCESS
   * @throws what `busi` threw; {@link DtmDuplicated} for op `msg` when the row exists (see {@link Msg.doAndSubmit})
   */
  call<Tx, T>(store: SqlBarrierStore<Tx>, busi: (tx: Tx) => Promise<T>): Promise<BarrierOutcome<T>> {
    return store.transaction((tx) => this.callInTransaction(store, tx, busi));
  }

  /**
   * As {@link BranchBarrier.call}, inside a local transaction the caller opened on `tx` and will commit (when this
   * resolves) or roll back (when it rejects) itself. The barrier's inserts must be the transaction's first
   * statements on the barrier table.
   */
  async callInTransaction<Tx, T>(
    store: SqlBarrierStore<Tx>,
    tx: Tx,
    busi: (tx: Tx) => Promise<T>,
  ): Promise<BarrierOutcome<T>> {
    const barrierId = this.nextBarrierId();
    const row = { transType: this.transType, gid: this.gid, branchId: this.branchId, barrierId, reason: this.op };
    const origin = ORIGIN_OP[this.op];
    // Steps 2 and 3, always in this order (origin first), so two barriers of one branch never deadlock.
    const originInserted = origin !== undefined && (await store.insertIgnore(tx, { ...row, op: origin }));
    const inserted = await store.insertIgnore(tx, { ...row, op: this.op });
    if (this.op === MSG_BARRIER.op && !inserted) {
      throw new DtmDuplicated(`msg ${this.gid}: the local transaction's barrier row exists already`);
    }
    if (origin !== undefined && originInserted) return { status: 'skipped', reason: 'null-compensation' };
    if (!inserted) {
      // Our own row means a repeat; a row written by the compensation (reason cancel/compensate) means hanging.
      const reason = await store.reasonOf(tx, { ...row, op: this.op });
      return { status: 'skipped', reason: reason === undefined || reason === this.op ? 'duplicate' : 'hanging' };
    }
    return { status: 'executed', value: await busi(tx) };
  }

  /**
   * The check-back of a two-phase message (`query_prepared`), for the database the AP's local transaction ran in:
   * inserts the msg row with reason `rollback` unless it exists, then reads it. If the AP's transaction is still
   * open, the insert waits until it ends, so the answer is final.
   *
   * @throws {@link DtmFailure} the local transaction rolled back (or never ran, and now never will): answer 409
   */
  async queryPrepared(store: SqlBarrierStore<unknown> | RedisBarrierLike): Promise<void> {
    if (store.kind === 'redis') return store.queryPrepared(this);
    const key = { gid: this.gid, ...MSG_BARRIER };
    await store.insertIgnore(null, { ...key, transType: this.transType, reason: 'rollback' });
    const reason = await store.reasonOf(null, key);
    if (reason === 'rollback') throw new DtmFailure(`msg ${this.gid}: the local transaction rolled back`);
  }

  /**
   * The Redis barrier (reference §7, `RedisCheckAdjustAmount`): in one Lua script, adds `amount` (negative to
   * take) to the integer at `key`, behind the barrier. A compensation with no action before it only marks the
   * action as done (null compensation); an action after its compensation is skipped (hanging).
   *
   * @throws {@link DtmFailure} `key` does not exist, or the result would be negative
   * @throws {@link DtmDuplicated} op `msg` and this gid's local step already ran
   */
  redisCheckAdjustAmount(store: RedisBarrierLike, key: string, amount: number): Promise<BarrierOutcome<void>> {
    return store.checkAdjustAmount(this, key, amount);
  }

  /** `transInfo: <trans_type> <gid> <branch_id> <op>` */
  toString(): string {
    return `transInfo: ${this.transType} ${this.gid} ${this.branchId} ${this.op}`;
  }
}

/** Barrier table names are interpolated into SQL: allow `name` or `schema.name` of plain identifier characters. */
export const checkTableName = (table: string): string => {
  if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$/.test(table)) {
    throw new TypeError(`barrier table '${table}' must be name or schema.name (letters, digits, _)`);
  }
  return table;
};

/** The default barrier table, as DTM's: `dtm_barrier.barrier`. */
export const DEFAULT_BARRIER_TABLE = 'dtm_barrier.barrier';
