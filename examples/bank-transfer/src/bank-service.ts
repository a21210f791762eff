import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { BranchBarrier, DtmFailure, Msg, queryPreparedHandler, rmHandler, type MsgOptions } from '@dtm-ts/client';
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
  /**
   * Sends `t` (whose `from` is this bank) as a two-phase message: debits locally and has the TM credit the other
   * bank. `chaos` may make it "die" after its local commit or inside its local transaction, before it submits.
   */
  sendByMsg(dtm: string, t: Transfer, options?: MsgOptions): Promise<MsgSendResult>;
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
 * | `POST /msg/TransIn`                                | action                  | credit                              |
 * | `GET /msg/QueryPrepared`                           | msg check-back          | did my local debit commit?          |
 */
export const startBank = async (opts: {
  name: string;
  db: BankDb;
  chaos?: Chaos;
  port?: number;
  host?: string;
}): Promise<BankService> => {
  const { db, name } = opts;
  const chaos = opts.chaos ?? new Chaos();
  const app = express();
  app.use(express.json());

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

  app.post('/msg/TransIn', ...branch((tx, bb, l) => db.credit(tx, bb.gid, bb.op, l.account, l.amount)));
  // The check-back may be slow or fail (the TM asks again), but must never say 409 unless the debit rolled back.
  app.get('/msg/QueryPrepared', chaos.middleware({ refuse: false }), queryPreparedHandler(db.store));

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  const url = `http://${opts.host ?? '127.0.0.1'}:${(server.address() as AddressInfo).port}`;

  const sendByMsg = async (dtm: string, t: Transfer, options: MsgOptions = {}): Promise<MsgSendResult> => {
    const msg = new Msg(dtm, t.gid, options).add(`${t.to.bank}/msg/TransIn`, {
      account: t.to.account,
      amount: t.amount,
    });
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
    sendByMsg,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
};
