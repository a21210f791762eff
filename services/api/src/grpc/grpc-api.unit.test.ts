import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  credentials,
  loadPackageDefinition,
  Metadata,
  status as Code,
  type Client,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { pino } from 'pino';
import type { DtmMetrics } from '@dtm-ts/telemetry';
import { BadRequest } from '../http/bad-request';
import type { DtmService } from '../http/dtm-service';
import { DTMGIMP_PROTO } from './dtmgimp';
import { peerAddress, startGrpcApi, type Authorize, type RunningGrpcApi } from './grpc-api';

type Unary = (req: object, md: Metadata, cb: (err: ServiceError | null, res?: Record<string, unknown>) => void) => void;
type DtmStub = Client & Record<string, Unary>;

const call = (c: DtmStub, method: string, req: object, md = new Metadata()) =>
  new Promise<{ err: ServiceError | null; res?: Record<string, unknown> }>((resolve) =>
    c[method]!.call(c, req, md, (err, res) => resolve({ err, res })),
  );

/** A DtmService stand-in: records the bodies it gets; `submit` refuses a gid 'bad'. */
const seen: { method: string; body: unknown }[] = [];
const svc = {
  newGid: () => ({ gid: 'G'.repeat(22) }),
  submit: (body: { gid?: string }) => {
    seen.push({ method: 'submit', body });
    return body.gid === 'bad' ? Promise.reject(new BadRequest('gid is required')) : Promise.resolve({});
  },
  subscribe: (topic: string, url: string, remark: string) => {
    seen.push({ method: 'subscribe', body: { topic, url, remark } });
    return Promise.resolve({});
  },
} as unknown as DtmService;

/** Metrics that remember what was recorded. */
const recorded: { name: string; attrs: Record<string, unknown> }[] = [];
const metrics = {
  serverProcess: { add: (_n: number, attrs: Record<string, unknown>) => recorded.push({ name: 'process', attrs }) },
  serverDuration: {
    record: (_v: number, attrs: Record<string, unknown>) => recorded.push({ name: 'duration', attrs }),
  },
} as unknown as DtmMetrics;

const peers: string[] = [];
/** Token 'admin' may do anything, 'client' what needs scope client; 'nobody' is known but has no scope; no token is refused. */
const scopes: Record<string, string[]> = { admin: ['client', 'admin'], client: ['client'], nobody: [] };
const authorize: Authorize = (header, peer, scope) => {
  peers.push(peer);
  const granted = scopes[header?.replace(/^Bearer /, '') ?? ''];
  if (!granted) return { ok: false, status: 401, message: 'a bearer token is required' };
  return granted.includes(scope) ? { ok: true } : { ok: false, status: 403, message: `the token lacks scope ${scope}` };
};

let api: RunningGrpcApi;
let open: RunningGrpcApi;
let client: DtmStub;
let openClient: DtmStub;

beforeAll(async () => {
  const logger = pino({ level: 'silent' });
  api = await startGrpcApi({ svc, logger, metrics, authorize, maxMessageBytes: 4096 }, '127.0.0.1', 0);
  open = await startGrpcApi({ svc, logger, metrics, maxMessageBytes: 4096 }, '127.0.0.1', 0);
  const pkg = loadPackageDefinition(loadSync(DTMGIMP_PROTO, { keepCase: true, defaults: true })) as unknown as {
    dtmgimp: { Dtm: new (target: string, creds: ReturnType<typeof credentials.createInsecure>) => DtmStub };
  };
  client = new pkg.dtmgimp.Dtm(api.target, credentials.createInsecure());
  openClient = new pkg.dtmgimp.Dtm(open.target, credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  openClient?.close();
  await api?.close();
  await open?.close();
});

const bearer = (token: string): Metadata => {
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
};

describe('access check on every call', () => {
  it('when no token is sent, then UNAUTHENTICATED and the service is not called', async () => {
    seen.length = 0;
    const { err } = await call(client, 'Submit', { Gid: 'g' });
    expect(err?.code).toBe(Code.UNAUTHENTICATED);
    expect(err?.details).toBe('a bearer token is required');
    expect(seen).toEqual([]);
  });

  it('when the token lacks the scope, then PERMISSION_DENIED', async () => {
    const { err } = await call(client, 'NewGid', {}, bearer('nobody'));
    expect(err?.code).toBe(Code.PERMISSION_DENIED);
  });

  it('the check gets the peer address without its port', async () => {
    peers.length = 0;
    await call(client, 'NewGid', {}, bearer('client'));
    expect(peers).toEqual(['127.0.0.1']);
    expect(peerAddress('::1:40000')).toBe('::1');
    expect(peerAddress('unknown')).toBe('unknown');
  });

  it('when the token is good, then the call goes through', async () => {
    const { err, res } = await call(client, 'NewGid', {}, bearer('client'));
    expect(err).toBeNull();
    expect(res?.Gid).toBe('G'.repeat(22));
  });

  it('when a client token calls a topic method, then PERMISSION_DENIED: topics need scope admin, as over HTTP', async () => {
    const topic = { Topic: 't', URL: 'h:1/a.B/C', Remark: '' };
    expect((await call(client, 'Subscribe', topic, bearer('client'))).err?.code).toBe(Code.PERMISSION_DENIED);
    seen.length = 0;
    expect((await call(client, 'Subscribe', topic, bearer('admin'))).err).toBeNull();
    expect(seen).toEqual([{ method: 'subscribe', body: { topic: 't', url: 'h:1/a.B/C', remark: '' } }]);
  });

  it('when no check is configured, then every call is allowed (as DTM)', async () => {
    const { err } = await call(openClient, 'Submit', { Gid: 'g', TransType: 'saga' });
    expect(err).toBeNull();
  });
});

describe('errors and limits', () => {
  it('when the service refuses the input, then INVALID_ARGUMENT with its message', async () => {
    const { err } = await call(openClient, 'Submit', { Gid: 'bad' });
    expect(err?.code).toBe(Code.INVALID_ARGUMENT);
    expect(err?.details).toBe('gid is required');
  });

  it('when a message is larger than MAX_BODY_BYTES, then RESOURCE_EXHAUSTED before the service sees it', async () => {
    seen.length = 0;
    const { err } = await call(openClient, 'Submit', { Gid: 'big', CustomedData: 'x'.repeat(5000) });
    expect(err?.code).toBe(Code.RESOURCE_EXHAUSTED);
    expect(seen).toEqual([]);
  });
});

describe('metrics', () => {
  it('when calls end, then DTM families are recorded with type grpc, the method in lower case, ok or fail', async () => {
    recorded.length = 0;
    await call(openClient, 'NewGid', {});
    await call(openClient, 'Submit', { Gid: 'bad' });
    expect(recorded).toEqual([
      { name: 'process', attrs: { type: 'grpc', api: 'newgid', status: 'ok' } },
      { name: 'duration', attrs: { type: 'grpc', api: 'newgid' } },
      { name: 'process', attrs: { type: 'grpc', api: 'submit', status: 'fail' } },
      { name: 'duration', attrs: { type: 'grpc', api: 'submit' } },
    ]);
  });
});
