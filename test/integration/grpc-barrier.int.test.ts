import { randomBytes } from 'node:crypto';
import { credentials, Metadata, status, type Client, type ServiceError } from '@grpc/grpc-js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BranchBarrier, PgBarrierStore } from '@dtm-ts/client';
import { uniqueGid, useTmFixture } from '../support/tm-harness';
import { loadBusi, reqGrpcBytes, startGrpcBankRm, type GrpcBankRm } from '../peers/grpc-bank-rm';

// A gRPC RM written with the client SDK (grpcRmHandler, BranchBarrier.fromGrpcMetadata) on the machine's
// PostgreSQL, driven by the TM over gRPC; and called directly, as a retrying or reordering network would.
const PG = { host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432), user: 'postgres' };
const fx = useTmFixture({ backoffCapS: 4 });
const ok = { status: 200, body: { dtm_result: 'SUCCESS' } };

let dbName = '';
let pool: pg.Pool;
let store: PgBarrierStore;
let rm: GrpcBankRm;
let client: Client & Record<string, (...args: unknown[]) => unknown>;

beforeAll(async () => {
  dbName = `dtm_grpc_rm_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ ...PG, database: 'postgres' });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();
  pool = new pg.Pool({ ...PG, database: dbName, max: 10 });
  pool.on('error', () => undefined);
  store = new PgBarrierStore(pool);
  await store.createTable();
  await pool.query('CREATE TABLE account (id int PRIMARY KEY, balance bigint NOT NULL)');
  rm = await startGrpcBankRm(pool, store);
  const { Busi } = loadBusi();
  client = new Busi(rm.address, credentials.createInsecure()) as never;
});

afterAll(async () => {
  client?.close();
  await rm?.close();
  await pool?.end();
  const admin = new pg.Client({ ...PG, database: 'postgres' });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
});

const resetAccounts = async () => {
  await pool.query('DELETE FROM account');
  await pool.query('INSERT INTO account VALUES (1, 1000), (2, 1000)');
};
const balances = async () =>
  (await pool.query<{ balance: string }>('SELECT balance FROM account ORDER BY id')).rows.map((r) => Number(r.balance));

const saga = (gid: string, amount: number, transInResult = '') => ({
  gid,
  trans_type: 'saga',
  protocol: 'grpc',
  steps: [
    { action: rm.url('TransOut'), compensate: rm.url('TransOutRevert') },
    { action: rm.url('TransIn'), compensate: rm.url('TransInRevert') },
  ],
  bin_payloads: [reqGrpcBytes(amount), reqGrpcBytes(amount, transInResult)].map((b) => b.toString('base64')),
  retry_interval: 1,
});

/** A two-phase message crediting account 2, checked back through the RM's QueryPrepared once 1 s passed. */
const msgToTransIn = (gid: string, amount: number) => ({
  gid,
  trans_type: 'msg',
  protocol: 'grpc',
  steps: [{ action: rm.url('TransIn') }],
  bin_payloads: [reqGrpcBytes(amount).toString('base64')],
  query_prepared: rm.url('QueryPrepared'),
  timeout_to_fail: 1,
});

/** Calls an RM method directly with the metadata the TM would send; resolves with the status code. */
const callRm = (method: string, gid: string, branchId: string, op: string, amount: number) =>
  new Promise<number>((resolve) => {
    const md = new Metadata();
    for (const [k, v] of Object.entries({
      'dtm-gid': gid,
      'dtm-trans_type': 'saga',
      'dtm-branch_id': branchId,
      'dtm-op': op,
    })) {
      md.set(k, v);
    }
    const fn = client[method]!.bind(client) as (
      req: unknown,
      md: Metadata,
      cb: (err: ServiceError | null) => void,
    ) => void;
    fn({ Amount: amount }, md, (err) => resolve(err ? err.code : status.OK));
  });

describe('a gRPC RM with the client SDK and the barrier on PostgreSQL', () => {
  it('when the saga succeeds, then the money moved once and each branch left its barrier row', async () => {
    await resetAccounts();
    const gid = uniqueGid('grm-ok');
    expect(await fx.dtm.post('/submit', saga(gid, 30))).toEqual(ok);
    await fx.dtm.waitFor(gid, 'succeed');
    expect(await balances()).toEqual([970, 1030]);
    const rows = await pool.query<{ branch_id: string; op: string }>(
      'SELECT branch_id, op FROM dtm_barrier.barrier WHERE gid = $1 ORDER BY branch_id, op',
      [gid],
    );
    expect(rows.rows.map((r) => `${r.branch_id}/${r.op}`)).toEqual(['01/action', '02/action']);
  });

  it('when TransIn says FAILURE (DtmFailure → ABORTED), then the saga rolls back and the balances are as before', async () => {
    await resetAccounts();
    const gid = uniqueGid('grm-fail');
    expect(await fx.dtm.post('/submit', saga(gid, 30, 'FAILURE'))).toEqual(ok);
    const tx = await fx.dtm.waitFor(gid, 'failed');
    expect(tx.rollback_reason).toContain('refused by bank');
    expect(await balances()).toEqual([1000, 1000]);
    // TransIn's business rolled back with its barrier row, so its compensation was a null compensation.
    const rows = await pool.query<{ branch_id: string; op: string; reason: string }>(
      'SELECT branch_id, op, reason FROM dtm_barrier.barrier WHERE gid = $1 ORDER BY branch_id, op',
      [gid],
    );
    expect(rows.rows.map((r) => `${r.branch_id}/${r.op}/${r.reason}`)).toEqual([
      '01/action/action',
      '01/compensate/compensate',
      '02/action/compensate',
      '02/compensate/compensate',
    ]);
  });

  it('when the same call arrives twice, then the business runs once; a late action after its compensation is skipped', async () => {
    await resetAccounts();
    const gid = uniqueGid('grm-dup');
    expect(await callRm('TransOut', gid, '01', 'action', 10)).toBe(status.OK);
    expect(await callRm('TransOut', gid, '01', 'action', 10)).toBe(status.OK);
    expect(await balances()).toEqual([990, 1000]);
    // Hanging: the compensation arrives first (a null compensation), then the action, which must not run.
    expect(await callRm('TransIn', gid, '02', 'compensate', 10)).toBe(status.OK);
    expect(await callRm('TransIn', gid, '02', 'action', 10)).toBe(status.OK);
    expect(await balances()).toEqual([990, 1000]);
  });

  it('when a call lacks the dtm metadata, then the RM answers INVALID_ARGUMENT and does nothing', async () => {
    await resetAccounts();
    const code = await new Promise<number>((resolve) => {
      const fn = client.TransOut!.bind(client) as (req: unknown, cb: (err: ServiceError | null) => void) => void;
      fn({ Amount: 5 }, (err) => resolve(err ? err.code : status.OK));
    });
    expect(code).toBe(status.INVALID_ARGUMENT);
    expect(await balances()).toEqual([1000, 1000]);
  });

  it("when a message's local transaction committed, then the gRPC check-back answers OK and it is delivered", async () => {
    await resetAccounts();
    const gid = uniqueGid('grm-msg');
    expect(await fx.dtm.post('/prepare', msgToTransIn(gid, 25))).toEqual(ok);
    // The AP's local step behind the msg barrier, then no submit: the check-back must find it.
    await new BranchBarrier('msg', gid, '00', 'msg').call(store, (tx: pg.PoolClient) =>
      tx.query('UPDATE account SET balance = balance - 25 WHERE id = 1'),
    );
    await fx.dtm.waitFor(gid, 'succeed', 15_000);
    expect(await balances()).toEqual([975, 1025]);
  });

  it("when a message's local transaction never ran, then the gRPC check-back answers ABORTED and it fails", async () => {
    const gid = uniqueGid('grm-msg-no');
    const transInsBefore = rm.executed.get('TransIn') ?? 0;
    expect(await fx.dtm.post('/prepare', msgToTransIn(gid, 25))).toEqual(ok);
    await fx.dtm.waitFor(gid, 'failed', 15_000);
    expect(rm.executed.get('TransIn') ?? 0).toBe(transInsBefore);
    const rows = await pool.query<{ reason: string }>('SELECT reason FROM dtm_barrier.barrier WHERE gid = $1', [gid]);
    expect(rows.rows.map((r) => r.reason)).toEqual(['rollback']);
  });
});
