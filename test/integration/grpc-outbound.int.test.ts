import { describe, expect, it } from 'vitest';
import { uniqueGid } from '../support/tm-harness';
import { b64, retriesOf, useGrpcFixture } from '../peers/grpc-fixture';

// gRPC branches under the outbound policy: a literal address is refused at submit, a name when its channel
// would connect (the channel dials only an address the policy checked).
describe('outbound policy on gRPC branches (TM with OUTBOUND_DENY=127.0.0.0/8,::1)', () => {
  const fx = useGrpcFixture({ outboundDeny: '127.0.0.0/8,::1' });
  const saga = (gid: string, action: string) => ({
    gid,
    trans_type: 'saga',
    protocol: 'grpc',
    steps: [{ action, compensate: '' }],
    bin_payloads: [b64('x')],
    retry_interval: 60,
  });

  it('when a gRPC url names a denied address, then the submit is refused with 422', async () => {
    const gid = uniqueGid('gout-literal');
    const res = await fx.dtm.post('/submit', saga(gid, fx.grpc.url('TransOut')));
    expect(res.status).toBe(422);
    expect(res.body.message).toMatch(/outbound URL refused/);
    expect((await fx.dtm.query(gid)).transaction).toBeNull();
  });

  it('when a name allowed at submit resolves to a denied address, then the channel is never opened and the call is an error', async () => {
    const gid = uniqueGid('gout-name');
    const res = await fx.dtm.post('/submit', saga(gid, `localhost:${fx.grpc.port}/busi.Busi/TransOut`));
    expect(res.status).toBe(200);
    await expect.poll(async () => (await retriesOf(fx.dtm, gid, '01', 'action')).length, { timeout: 20_000 }).toBe(1);
    const [retry] = await retriesOf(fx.dtm, gid, '01', 'action');
    expect(retry).toMatchObject({ outcome: 'error' });
    expect(retry!.reason).toMatch(/localhost resolved to (127\.0\.0\.1|::1), which matches OUTBOUND_DENY/);
    expect(fx.grpc.callsTo(gid, 'TransOut')).toHaveLength(0);
  });
});
