import { describe, expect, it } from 'vitest';
import { parseApiTokens, parseTrustedNets } from '@dtm-ts/config';
import { addressOfGrpcPeer, Authorizer, isLoopbackHost, scopeOfGrpcMethod, scopeOfPath } from './auth';

const CLIENT = 'client-token-0123456789';
const ADMIN = 'admin-token-0123456789ab';
const auth = new Authorizer({
  tokens: parseApiTokens(`${CLIENT}:client,${ADMIN}:admin`),
  trustedNets: parseTrustedNets('10.0.0.0/8,fd00::/8,192.168.1.7=admin'),
});
const outside = '203.0.113.9';

describe('Authorizer', () => {
  it('when nothing is configured, then everything is allowed (DTM behaviour)', () => {
    const open = new Authorizer({});
    expect(open.enabled).toBe(false);
    expect(open.check(undefined, outside, 'admin')).toEqual({ ok: true, via: 'open' });
  });

  it('when a client token asks for client or admin, then client passes and admin is a 403', () => {
    expect(auth.check(`Bearer ${CLIENT}`, outside, 'client')).toEqual({ ok: true, via: 'token' });
    const d = auth.check(`Bearer ${CLIENT}`, outside, 'admin');
    expect(d).toMatchObject({ ok: false, status: 403 });
    expect(!d.ok && d.challenge).toMatch(/insufficient_scope/);
  });

  it('when an admin token asks for either scope, then it passes (admin implies client)', () => {
    expect(auth.check(`bearer ${ADMIN}`, outside, 'admin').ok).toBe(true);
    expect(auth.check(`Bearer ${ADMIN}`, outside, 'client').ok).toBe(true);
  });

  it('when the token is missing, wrong or not a bearer, then it is a 401 that does not echo it', () => {
    for (const header of [
      undefined,
      '',
      `Bearer ${CLIENT}x`,
      `Basic ${CLIENT}`,
      'Bearer',
      `Bearer ${CLIENT.slice(1)}`,
    ]) {
      const d = auth.check(header, outside, 'client');
      expect(d).toMatchObject({ ok: false, status: 401 });
      expect(!d.ok && d.challenge).toMatch(/^Bearer realm="dtm-ts"/);
      expect(JSON.stringify(d)).not.toContain(CLIENT.slice(0, 10));
    }
  });

  it('when the peer is in a trusted network, then it needs no token for its scope', () => {
    expect(auth.check(undefined, '10.1.2.3', 'client')).toEqual({ ok: true, via: 'trusted-net' });
    expect(auth.check(undefined, '::ffff:10.1.2.3', 'client').ok).toBe(true);
    expect(auth.check(undefined, 'fd00::1', 'client').ok).toBe(true);
    expect(auth.check(undefined, '10.1.2.3', 'admin')).toMatchObject({ ok: false, status: 401 });
    expect(auth.check(undefined, '192.168.1.7', 'admin').ok).toBe(true);
    expect(auth.check(undefined, '::ffff:192.168.1.7', 'admin').ok).toBe(true);
    expect(auth.check(undefined, '11.0.0.1', 'client')).toMatchObject({ ok: false, status: 401 });
    expect(auth.check(undefined, 'fe80::1', 'client')).toMatchObject({ ok: false, status: 401 });
    expect(auth.check(undefined, undefined, 'client')).toMatchObject({ ok: false, status: 401 });
  });

  it('when a trusted peer sends a wrong token, then the token is refused rather than ignored', () => {
    expect(auth.check('Bearer wrong-token-0123456789', '10.1.2.3', 'client')).toMatchObject({ ok: false, status: 401 });
  });
});

describe('scopes of the HTTP endpoints', () => {
  it('AP endpoints need client, admin endpoints and unknown paths admin, ping and metrics nothing', () => {
    for (const p of [
      '/api/dtmsvr/submit',
      '/api/dtmsvr/newGid',
      '/api/dtmsvr/registerTccBranch',
      '/api/json-rpc',
      '/api/dtmsvr/query/',
    ])
      expect(scopeOfPath(p), p).toBe('client');
    for (const p of [
      '/api/dtmsvr/forceStop',
      '/api/dtmsvr/FORCESTOP',
      '/api/dtmsvr/all',
      '/api/dtmsvr/events',
      '/api/dtmsvr/topic/t',
      '/api/dtmsvr/resetCronTime',
      '/api/dtmsvr/subscribe',
      '/api/console/counts',
      '/api/console/tx',
      '/txs',
      '/api/dtmsvr/scanKV',
      '//api/dtmsvr/submit',
    ])
      expect(scopeOfPath(p), p).toBe('admin');
    // The console's shells and scripts hold no data; what they show comes from the admin endpoints above.
    for (const p of [
      '/',
      '/unfinished',
      '/alerts',
      '/topics/',
      '/tx/order%2F1',
      '/console/app.js',
      '/console/vendor/htm.mjs',
    ])
      expect(scopeOfPath(p), p).toBeNull();
    expect(scopeOfPath('/api/ping')).toBeNull();
    expect(scopeOfPath('/api/metrics')).toBeNull();
  });

  it('gRPC: the AP methods need client, topics admin', () => {
    expect(scopeOfGrpcMethod('Submit')).toBe('client');
    expect(scopeOfGrpcMethod('DeleteTopic')).toBe('admin');
    expect(scopeOfGrpcMethod('Anything')).toBe('admin');
  });

  it('reads gRPC peers and loopback hosts', () => {
    expect(addressOfGrpcPeer('ipv4:10.1.2.3:5000')).toBe('10.1.2.3');
    expect(addressOfGrpcPeer('ipv6:[::1]:5000')).toBe('::1');
    expect(isLoopbackHost('127.0.0.1')).toBe(true);
    expect(isLoopbackHost('0.0.0.0')).toBe(false);
  });
});

describe('token and network settings', () => {
  it('parse the documented formats', () => {
    expect(parseApiTokens(`${CLIENT}:client\n# ops\n${ADMIN}:admin\n`)).toEqual([
      { token: CLIENT, scope: 'client' },
      { token: ADMIN, scope: 'admin' },
    ]);
    expect(parseTrustedNets('10.0.0.0/8, ::1=admin')).toEqual([
      { address: '10.0.0.0', prefix: 8, family: 'ipv4', scope: 'client' },
      { address: '::1', prefix: 128, family: 'ipv6', scope: 'admin' },
    ]);
  });

  it('refuse bad entries without showing the token', () => {
    expect(() => parseApiTokens('short:client')).toThrow(/entry 1: a token is 16 to 512/);
    expect(() => parseApiTokens(`${CLIENT}:root`)).toThrow(/entry 1: expected <token>:client or <token>:admin/);
    try {
      parseApiTokens(`${CLIENT}:root`);
    } catch (err) {
      expect(String(err)).not.toContain(CLIENT);
    }
    expect(() => parseTrustedNets('10.0.0.0/33')).toThrow(/prefix length/);
    expect(() => parseTrustedNets('example.com')).toThrow(/not an IPv4 or IPv6 address/);
  });
});

describe('configuration of auth', () => {
  it('when API_TOKENS is malformed, then the error names the variable but never shows its value', async () => {
    const { loadConfig } = await import('@dtm-ts/config');
    const secret = 'very-secret-token-value-123';
    expect(() => loadConfig({ API_TOKENS: `${secret}:root` })).toThrow(/API_TOKENS=\(value not shown\): entry 1/);
    try {
      loadConfig({ API_TOKENS: `${secret}:root` });
    } catch (err) {
      expect(String(err)).not.toContain(secret);
    }
  });
});

describe('authorizer of a process', () => {
  const logger = () => {
    const lines: { level: string; msg: string }[] = [];
    const at = (level: string) => (_o: unknown, msg: string) => lines.push({ level, msg });
    return { lines, log: { warn: at('warn'), info: at('info') } as never };
  };

  it('when the API listens beyond loopback without tokens, then it warns loudly at start; on loopback it does not', async () => {
    const { loadConfig } = await import('@dtm-ts/config');
    const { authorizerOf } = await import('./auth');
    const exposed = logger();
    expect(authorizerOf(loadConfig({ HOST: '0.0.0.0' }), exposed.log).enabled).toBe(false);
    expect(exposed.lines).toEqual([{ level: 'warn', msg: expect.stringMatching(/WITHOUT authentication/) as never }]);
    const local = logger();
    authorizerOf(loadConfig({ HOST: '127.0.0.1' }), local.log);
    expect(local.lines).toEqual([]);
  });

  it('when API_TOKENS_FILE names a file, then its tokens are accepted along with API_TOKENS', async () => {
    const fs = await import('node:fs');
    const path = await import('node:path');
    const os = await import('node:os');
    const { loadConfig } = await import('@dtm-ts/config');
    const { authorizerOf } = await import('./auth');
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dtm-tokens-')), 'tokens');
    fs.writeFileSync(file, `# ops team\n${ADMIN}:admin\n`);
    const l = logger();
    const a = authorizerOf(loadConfig({ API_TOKENS: `${CLIENT}:client`, API_TOKENS_FILE: file }), l.log);
    expect(a.check(`Bearer ${ADMIN}`, outside, 'admin').ok).toBe(true);
    expect(a.check(`Bearer ${CLIENT}`, outside, 'client').ok).toBe(true);
    expect(JSON.stringify(l.lines)).not.toContain(ADMIN);
    expect(() => authorizerOf(loadConfig({ API_TOKENS_FILE: `${file}.missing` }), l.log)).toThrow(/API_TOKENS_FILE=/);
  });
});
