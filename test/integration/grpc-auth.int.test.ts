import { describe, expect, it } from 'vitest';
import { Metadata, status as Code } from '@grpc/grpc-js';
import { grpcCall, useGrpcTmFixture } from '../support/grpc-tm';

const fx = useGrpcTmFixture({
  apiTokens: [
    { token: 'ap-token', scope: 'client' },
    { token: 'ops-token', scope: 'admin' },
  ],
});

const bearer = (token: string): Metadata => {
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
};

describe('the gRPC API asks the same access check as HTTP (API_TOKENS)', () => {
  it('when no token is sent, then UNAUTHENTICATED (and HTTP answers 401 alike)', async () => {
    const { err } = await grpcCall(fx.stub, 'NewGid', {});
    expect(err?.code).toBe(Code.UNAUTHENTICATED);
    expect((await fetch(`${fx.tm.url}/api/dtmsvr/newGid`)).status).toBe(401);
  });

  it('when a client token is sent, then the AP calls go through; the topic calls need admin', async () => {
    const gid = await grpcCall(fx.stub, 'NewGid', {}, bearer('ap-token'));
    expect(gid.err).toBeNull();
    const topic = { Topic: 'auth-topic', URL: 'http://127.0.0.1:9/x' };
    expect((await grpcCall(fx.stub, 'Subscribe', topic, bearer('ap-token'))).err?.code).toBe(Code.PERMISSION_DENIED);
    expect((await grpcCall(fx.stub, 'Subscribe', topic, bearer('ops-token'))).err).toBeNull();
  });

  it('when the token is unknown, then UNAUTHENTICATED', async () => {
    expect((await grpcCall(fx.stub, 'NewGid', {}, bearer('guess'))).err?.code).toBe(Code.UNAUTHENTICATED);
  });
});
