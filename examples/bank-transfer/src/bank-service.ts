import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import {
  BranchBarrier,
  DtmFailure,
  Msg,
  queryPreparedHandler,
  rmHandler,
  xaLocalTransaction,
  type MsgOptions,
} from '@dtm-ts/client';
import type { BankDb } from './bank-db';
import { Chaos, InjectedFault } from './chaos';
import type { Transfer } from './transfer';

/** The body of every branch call: which account, how much. */
interface Leg {
  readonly account: number;
  readonly amount: number;
}

/** What happened to a transfer sent as a two-phase message by {@link BankService.sendByMsg}. */
export type MsgSendResult = 'submitted' | 'refused' | 'crashed-after-commit' | 'crashed-before-commit';

/** A running bank: its RM routes over HTTP, and its side of a msg transfer. */
export interface BankService {
  readonly name: string;
  /** `http://host:port` */
  readonly url: string;
  readonly db: BankDb;
  readonly chaos: Chaos;
  /** Calls received per route and op (`POST /saga/TransOut action`), counted before any fault is injected. */
  readonly calls: Map<string, number>;
  /**
   * Compensating calls received (saga compensate, TCC cancel, XA rollback), per gid: a transaction that ended
   * `succeed` must have none.
   */
  readonly compensations: Map<string, number>;
  /**
   * Sends `t` (whose `from` is this bank) as a two-phase message: debits locally and has the TM credit the other
   * bank. `chaos` may make it "die" after its local commit or inside its local transaction, before it submits.
   */
  sendByMsg(dtm: string, t: Transfer, options?: MsgOptions & { kafkaTopic?: string }): Promise<MsgSendResult>;
  close(): Promise<void>;
}

/**
 * Starts a bank's RM on `port` (0: any free port). Routes, all behind the barrier:
 *
 * | route                                              | TM op(s)                | what it does                        |
 * | -------------------------------------------------- | ----------------------- | ----------------------------------- |
 * | `POST /saga/TransOut`, `/saga/TransOutRevert`      | action, compensate      | debit (409 when short), credit back |
 * | `POST /saga/TransIn`, `/saga/TransInRevert`        | action, compensate      | credit, debit back                  |
 * | `POST /tcc/TransOut{Try,Confirm,Cancel}`           | try, confirm, cancel    | hold (409 when short), settle, free |
 * | `POST /tcc/TransIn{Try,Confirm,Cancel}`            | try, confirm, cancel    | nothing, credit, nothing            |
 * | `POST /xa/TransOut`, `/xa/TransIn`                 | action, commit, rollback| debit (409 when short) / credit, in |
 * |                                                    |                         | an XA transaction the TM finishes   |
 * | `POST /msg/TransIn`                                | action                  | credit                              |
 * | `GET /msg/QueryPrepared`                           | msg check-back          | did my local debit commit?          |
 */
export const startBank = async (opts: {
  name: string;
  db: BankDb;
  chaos?: Chaos;
  port?: number;
  host?: string;
  /** The url the TM and the APs reach this bank at, when not its own (a proxy in front of it). */
  advertisedUrl?: string;
}): Promise<BankService> => {
  const { db, name } = opts;
  const chaos = opts.chaos ?? new Chaos();
  const app = express();
  app.use(express.json());
  const calls = new Map<string, number>();
  const compensations = new Map<string, number>();
  app.use((req, _res, next) => {
    const op = typeof req.query['op'] === 'string' ? req.query['op'] : '';
    const key = `${req.method} ${req.path} ${op}`.trimEnd();
    calls.set(key, (calls.get(key) ?? 0) + 1);
    const gid = typeof req.query['gid'] === 'string' ? req.query['gid'] : '';
    if (op === 'compensate' || op === 'cancel' || op === 'rollback')
      compensations.set(gid, (compensations.get(gid) ?? 0) + 1);
    next();
  });

  /** A branch route: the business runs in the barrier's local transaction; chaos may lose the reply afterwards. */
  const branch = (work: (tx: unknown, bb: BranchBarrier, leg: Leg) => Promise<void>) => [
    chaos.middleware(),
    rmHandler(async (req) => {
      const leg = req.body as Leg;
      const bb = BranchBarrier.fromQuery(req.query);
      await bb.call(db.store, (tx) => work(tx, bb, leg));
      chaos.afterCommit();
    }),
  ];
  const nothing = (): Promise<void> => Promise.resolve();

  app.post('/saga/TransOut', ...branch((tx, bb, l) => db.debit(tx, bb.gid, bb.op, l.account, l.amount)));
  app.post('/saga/TransOutRevert', ...branch((tx, bb, l) => db.credit(tx, bb.gid, bb.op, l.account, l.amount)));
  app.post('/saga/TransIn', ...branch((tx, bb, l) => db.credit(tx, bb.gid, bb.op, l.account, l.amount)));
  app.post('/saga/TransInRevert', ...branch((tx, bb, l) => db.reverseCredit(tx, bb.gid, bb.op, l.account, l.amount)));

  app.post('/tcc/TransOutTry', ...branch((tx, _bb, l) => db.freeze(tx, l.account, l.amount)));
  app.post('/tcc/TransOutConfirm', ...branch((tx, bb, l) => db.settle(tx, bb.gid, l.account, l.amount)));
  app.post('/tcc/TransOutCancel', ...branch((tx, _bb, l) => db.unfreeze(tx, l.account, l.amount)));
  // A credit holds nothing at try; its barrier rows still matter: they make a late try after a cancel a no-op.
  app.post('/tcc/TransInTry', ...branch(nothing));
  app.post('/tcc/TransInConfirm', ...branch((tx, bb, l) => db.credit(tx, bb.gid, bb.op, l.account, l.amount)));
  app.post('/tcc/TransInCancel', ...branch(nothing));

  // XA: one url per side for all three ops; the debit or credit runs in an XA transaction the TM commits or
  // rolls back. Chaos may lose the reply of any of them, after the work (or the phase 2) is done.
  const xaBranch = (work: (tx: unknown, gid: string, l: Leg) => Promise<void>) => [
    chaos.middleware(),
    rmHandler(async (req) => {
      const leg = req.body as Leg;
      await xaLocalTransaction(req.query, db.xa, (tx, xa) => work(tx, xa.gid, leg));
      chaos.afterCommit();
    }),
  ];
  app.post('/xa/TransOut', ...xaBranch((tx, gid, l) => db.debit(tx, gid, 'action', l.account, l.amount)));
  app.post('/xa/TransIn', ...xaBranch((tx, gid, l) => db.credit(tx, gid, 'action', l.account, l.amount)));

  app.post('/msg/TransIn', ...branch((tx, bb, l) => db.credit(tx, bb.gid, bb.op, l.account, l.amount)));
  // The check-back may be slow or fail (the TM asks again), but must never say 409 unless the debit rolled back.
  app.get('/msg/QueryPrepared', chaos.middleware({ refuse: false }), queryPreparedHandler(db.store));

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  const url = opts.advertisedUrl ?? `http://${opts.host ?? '127.0.0.1'}:${(server.address() as AddressInfo).port}`;

  const sendByMsg = async (
    dtm: string,
    t: Transfer,
    { kafkaTopic, ...options }: MsgOptions & { kafkaTopic?: string } = {},
  ): Promise<MsgSendResult> => {
    // Delivered by HTTP to the receiving bank, or as a Kafka record its consumer applies (see kafka-credit.ts).
    const credit = { account: t.to.account, amount: t.amount };
    const msg = new Msg(dtm, t.gid, options).add(
      kafkaTopic ? `kafka://${kafkaTopic}` : `${t.to.bank}/msg/TransIn`,
      kafkaTopic ? { ...credit, bank: t.to.bank } : credit,
    );
    const queryPrepared = `${url}/msg/QueryPrepared`;
    const debit = (tx: unknown) => db.debit(tx, t.gid, 'msg', t.from.account, t.amount);
    const crash = chaos.roll('crashAfterCommit') ? 'after' : chaos.roll('crashBeforeCommit') ? 'before' : undefined;
    if (crash) {
      // What doAndSubmitDb does, cut short: prepared and (maybe) committed, but never submitted nor aborted.
      await msg.prepare(queryPrepared);
      await new BranchBarrier('msg', t.gid, '00', 'msg')
        .call(db.store, async (tx) => {
          await debit(tx);
          if (crash === 'before') throw new InjectedFault('died inside the local transaction');
        })
        .catch(() => undefined); // a short balance rolls back too: either way, the check-back decides
      return crash === 'after' ? 'crashed-after-commit' : 'crashed-before-commit';
    }
    try {
      await msg.doAndSubmitDb(queryPrepared, db.store, debit);
      return 'submitted';
    } catch (err) {
      if (err instanceof DtmFailure) return 'refused'; // short of money: aborted, nothing delivered
      throw err;
    }
  };

  return {
    name,
    url,
    db,
    chaos,
    calls,
    compensations,
    sendByMsg,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
};
