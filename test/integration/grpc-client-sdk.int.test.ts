import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Server,
  ServerCredentials,
  status as Code,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import {
  closeGrpcChannels,
  DtmFailure,
  DtmGrpcClient,
  DtmTransportError,
  MsgGrpc,
  SagaGrpc,
  tccGrpcGlobalTransaction,
  xaGrpcGlobalTransaction,
} from '@dtm-ts/client';
import { useGrpcTmFixture } from '../support/grpc-tm';
import { uniqueGid } from '../support/tm-harness';

const fx = useGrpcTmFixture();
const b64 = (bytes: Uint8Array | string): string => Buffer.from(bytes).toString('base64');

/** What an AP-called gRPC RM method received. */
interface RmCall {
  readonly method: string;
  readonly payload: Buffer;
  readonly md: Record<string, string>;
}
/** A scripted answer: OK with these bytes, or a status. */
type RmReply = { ok: Buffer } | { code: Code; details: string };

/** A gRPC RM (service busi.Busi, raw bytes) for the calls an AP makes itself: TCC try, XA action, msg check-back. */
const rm = {
  calls: [] as RmCall[],
  scripts: new Map<string, (call: RmCall) => RmReply | Promise<RmReply>>(),
  server: new Server(),
  target: '',
  url: (method: string) => `${rm.target}/busi.Busi/${method}`,
};
const METHODS = ['TryOut', 'TryIn', 'XaAction', 'QueryPrepared'];

beforeAll(async () => {
  const raw = (b: Buffer) => b;
  const def: ServiceDefinition = Object.fromEntries(
    METHODS.map((m) => [
      m,
      {
        path: `/busi.Busi/${m}`,
        requestStream: false,
        responseStream: false,
        requestSerialize: raw,
        requestDeserialize: raw,
        responseSerialize: raw,
        responseDeserialize: raw,
      },
    ]),
  );
  const impl = Object.fromEntries(
    METHODS.map((m) => [
      m,
      (call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => {
        const md = Object.fromEntries(Object.entries(call.metadata.getMap()).map(([k, v]) => [k, String(v)]));
        const rec: RmCall = { method: m, payload: call.request, md };
        rm.calls.push(rec);
        void Promise.resolve((rm.scripts.get(m) ?? (() => ({ ok: Buffer.from('ok') })))(rec)).then(
          (reply) => ('ok' in reply ? cb(null, reply.ok) : cb({ code: reply.code, details: reply.details })),
          (err: unknown) => cb({ code: Code.INTERNAL, details: String(err) }),
        );
      },
    ]),
  );
  rm.server.addService(def, impl);
  const port = await new Promise<number>((resolve, reject) =>
    rm.server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  rm.target = `127.0.0.1:${port}`;
});

afterAll(async () => {
  closeGrpcChannels();
  await new Promise<void>((resolve) => rm.server.tryShutdown(() => resolve()));
});

const callsFor = (gid: string) => rm.calls.filter((c) => c.md['dtm-gid'] === gid);

describe('DtmGrpcClient and SagaGrpc', () => {
  it('when a saga is built with byte payloads and submitted over gRPC, then the TM stores and runs it', async () => {
    const client = new DtmGrpcClient(fx.target);
    const gid = await client.newGid();
    expect(gid).toHaveLength(22);
    await new SagaGrpc(client, gid, { retryInterval: 3 })
      .add(fx.peer.url(`${gid}/out`), fx.peer.url(`${gid}/out-revert`), Uint8Array.from([1, 2, 3]))
      .add(fx.peer.url(`${gid}/in`), fx.peer.url(`${gid}/in-revert`), '{"amount":30}')
      .enableConcurrent()
      .addBranchOrder(1, [0])
      .submit();
    await fx.dtm.waitFor(gid, 'succeed');
    const { transaction } = await fx.dtm.query(gid);
    expect(transaction).toMatchObject({
      protocol: 'grpc',
      payloads: [b64(Uint8Array.from([1, 2, 3])), b64('{"amount":30}')],
      retry_interval: 3,
      custom_data: JSON.stringify({ orders: { 1: [0] }, concurrent: true }),
    });
    expect(fx.peer.calls.filter((c) => c.path.startsWith(gid)).map((c) => c.path)).toEqual([`${gid}/out`, `${gid}/in`]);
  });

  it('when a waitResult saga rolls back, then submit rejects with DtmFailure carrying ABORTED', async () => {
    const gid = uniqueGid('sdk-wait');
    fx.peer.script(`${gid}/in`, [409]);
    const submit = new SagaGrpc(fx.target, gid, { waitResult: true })
      .add(fx.peer.url(`${gid}/in`), fx.peer.url(`${gid}/in-revert`), 'x')
      .submit();
    await expect(submit).rejects.toBeInstanceOf(DtmFailure);
    await expect(submit).rejects.toMatchObject({ grpcCode: Code.ABORTED });
  });

  it('when the saga is refused as bad input, then DtmTransportError carries INVALID_ARGUMENT and the field', async () => {
    const submit = new SagaGrpc(fx.target, uniqueGid('sdk-bad')).add('not a url', '', 'x').submit();
    await expect(submit).rejects.toBeInstanceOf(DtmTransportError);
    await expect(submit).rejects.toMatchObject({ grpcCode: Code.INVALID_ARGUMENT, message: /steps\[0\]\.action/ });
  });

  it('when no TM listens, then DtmTransportError carries UNAVAILABLE', async () => {
    const client = new DtmGrpcClient('127.0.0.1:1', { timeoutMs: 2000 });
    await expect(client.newGid()).rejects.toMatchObject({ name: 'DtmTransportError', grpcCode: Code.UNAVAILABLE });
  });
});

describe('tccGrpcGlobalTransaction', () => {
  it('when every try succeeds, then the tries got the bytes and dtm metadata, and the TM confirms each branch', async () => {
    const gid = uniqueGid('sdk-tcc');
    const replies = await tccGrpcGlobalTransaction(fx.target, gid, async (tcc) => [
      await tcc.callBranch(Uint8Array.from([5]), rm.url('TryOut'), fx.peer.url(`${gid}/c1`), fx.peer.url(`${gid}/x1`)),
      await tcc.callBranch('in', rm.url('TryIn'), fx.peer.url(`${gid}/c2`), fx.peer.url(`${gid}/x2`)),
    ]);
    expect(replies.map((r) => Buffer.from(r).toString())).toEqual(['ok', 'ok']);
    const tries = callsFor(gid);
    expect(tries.map((c) => [c.method, c.md['dtm-branch_id'], c.md['dtm-op'], c.md['dtm-trans_type']])).toEqual([
      ['TryOut', '01', 'try', 'tcc'],
      ['TryIn', '02', 'try', 'tcc'],
    ]);
    expect(tries[0]!.md['dtm-dtm']).toBe(fx.target);
    expect([...tries[0]!.payload]).toEqual([5]);
    await fx.dtm.waitFor(gid, 'succeed');
    expect(fx.peer.callsTo(`${gid}/c1`)).toHaveLength(1);
    expect(fx.peer.callsTo(`${gid}/c2`)).toHaveLength(1);
  });

  it('when a try answers ABORTED, then the transaction is aborted (every branch cancelled) and DtmFailure is rethrown', async () => {
    const gid = uniqueGid('sdk-tcc-no');
    rm.scripts.set('TryIn', (c) =>
      c.md['dtm-gid'] === gid ? { code: Code.ABORTED, details: 'insufficient funds' } : { ok: Buffer.from('ok') },
    );
    const run = tccGrpcGlobalTransaction(fx.target, gid, { retryInterval: 1 }, async (tcc) => {
      await tcc.callBranch('out', rm.url('TryOut'), fx.peer.url(`${gid}/c1`), fx.peer.url(`${gid}/x1`));
      await tcc.callBranch('in', rm.url('TryIn'), fx.peer.url(`${gid}/c2`), fx.peer.url(`${gid}/x2`));
    });
    await expect(run).rejects.toBeInstanceOf(DtmFailure);
    rm.scripts.delete('TryIn');
    const tx = await fx.dtm.waitFor(gid, 'failed');
    expect(tx.rollback_reason).toMatch(/insufficient funds/);
    expect(fx.peer.callsTo(`${gid}/x1`)).toHaveLength(1);
    expect(fx.peer.callsTo(`${gid}/x2`)).toHaveLength(1);
    expect(fx.peer.callsTo(`${gid}/c1`)).toHaveLength(0);
  });
});

describe('xaGrpcGlobalTransaction', () => {
  it('when the RM registers its branch over gRPC during the action, then the TM commits it after submit', async () => {
    const gid = uniqueGid('sdk-xa');
    rm.scripts.set('XaAction', async (c) => {
      // The RM side, as DTM's XaLocalTransaction: register the branch (its phase-2 URL) with the TM over gRPC.
      await new DtmGrpcClient(c.md['dtm-dtm']!).registerBranch({
        Gid: c.md['dtm-gid']!,
        TransType: 'xa',
        BranchID: c.md['dtm-branch_id']!,
        Data: { url: fx.peer.url(`${gid}/phase2`) },
      });
      return { ok: Buffer.from('prepared') };
    });
    await xaGrpcGlobalTransaction(fx.target, gid, async (xa) => {
      await xa.callBranch(Uint8Array.from([1]), rm.url('XaAction'));
    });
    rm.scripts.delete('XaAction');
    const action = callsFor(gid)[0]!;
    expect(action.md).toMatchObject({
      'dtm-op': 'action',
      'dtm-branch_id': '01',
      'dtm-phase2_url': rm.url('XaAction'),
    });
    await fx.dtm.waitFor(gid, 'succeed');
    expect(fx.peer.callsTo(`${gid}/phase2`).map((c) => c.query.op)).toEqual(['commit']);
  });
});

describe('MsgGrpc', () => {
  it('when prepared then submitted, then the steps are delivered', async () => {
    const gid = uniqueGid('sdk-msg');
    const msg = new MsgGrpc(fx.target, gid).add(fx.peer.url(`${gid}/in`), Uint8Array.from([4, 2]));
    await msg.prepare(rm.url('QueryPrepared'));
    expect((await fx.dtm.query(gid)).transaction).toMatchObject({
      status: 'prepared',
      payloads: [b64(Uint8Array.from([4, 2]))],
    });
    await msg.submit();
    await fx.dtm.waitFor(gid, 'succeed');
    expect(fx.peer.callsTo(`${gid}/in`)).toHaveLength(1);
  });

  it('when the local transaction fails oddly and the gRPC check-back says committed, then doAndSubmit submits and rethrows', async () => {
    const gid = uniqueGid('sdk-msg-ok');
    const msg = new MsgGrpc(fx.target, gid).add(fx.peer.url(`${gid}/in`), 'x');
    await expect(
      msg.doAndSubmit(rm.url('QueryPrepared'), async () => {
        throw new Error('commit acknowledgement lost');
      }),
    ).rejects.toThrow('commit acknowledgement lost');
    const check = callsFor(gid)[0]!;
    expect(check.md).toMatchObject({ 'dtm-branch_id': '00', 'dtm-op': 'msg', 'dtm-trans_type': 'msg' });
    await fx.dtm.waitFor(gid, 'succeed');
  });

  it('when the check-back answers ABORTED, then doAndSubmit aborts: failed, nothing delivered', async () => {
    const gid = uniqueGid('sdk-msg-no');
    rm.scripts.set('QueryPrepared', (c) =>
      c.md['dtm-gid'] === gid ? { code: Code.ABORTED, details: 'rolled back' } : { ok: Buffer.alloc(0) },
    );
    const msg = new MsgGrpc(fx.target, gid).add(fx.peer.url(`${gid}/in`), 'x');
    await expect(
      msg.doAndSubmit(rm.url('QueryPrepared'), async () => {
        throw new Error('connection reset');
      }),
    ).rejects.toThrow('connection reset');
    rm.scripts.delete('QueryPrepared');
    await fx.dtm.waitFor(gid, 'failed');
    expect(fx.peer.callsTo(`${gid}/in`)).toHaveLength(0);
  });
});
