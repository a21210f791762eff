import { describe, expect, it } from 'vitest';
import { OutboundPolicy, OutboundRefused, type OutboundPolicyOptions, type Resolver } from './outbound-policy';
import { OutboundRuleError } from './rules';

/** A policy that knows no interfaces of its own beyond loopback, and resolves names from a table. */
const policy = (opts: OutboundPolicyOptions = {}, names: Record<string, string[]> = {}) => {
  const resolve: Resolver = (host) => {
    const list = names[host];
    if (!list) return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' }));
    return Promise.resolve(list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
  };
  return new OutboundPolicy({ localAddresses: ['10.1.2.3'], localNames: ['localhost', 'tm-host'], resolve, ...opts });
};

describe('outbound policy at submit (no DNS)', () => {
  it.each([
    'http://169.254.169.254/latest/meta-data/',
    'http://169.254.1.1:8080/x',
    'http://[fe80::1]/x',
    'http://[fd00:ec2::254]/latest',
    'http://metadata.google.internal/computeMetadata/v1/',
    'http://METADATA.google.internal./computeMetadata/v1/',
    'http://[::ffff:169.254.169.254]/',
    'http://[::ffff:a9fe:a9fe]/',
    'http://[0:0:0:0:0:ffff:a9fe:a9fe]/',
    'http://[64:ff9b::a9fe:a9fe]/',
    'http://2852039166/',
    'http://0xa9.0xfe.0xa9.0xfe/',
    'http://0.0.0.0:8081/x',
    'http://0/x',
    'http://[::]:8081/x',
    'http://[::ffff:0.0.0.0]:8081/x',
    'https://100.100.100.200/latest',
  ])('when a URL points at a metadata, link-local or unspecified address (%s), then it is refused', (url) => {
    const why = policy().refusal(url);
    expect(why).toContain(url);
    expect(why).toMatch(/denied by default/);
  });

  it.each([
    'http://127.0.0.1:36789/api/dtmsvr/forceStop',
    'http://localhost:36789/api/dtmsvr/forceStop',
    'http://tm-host:36789/x',
    'http://api.localhost:36789/x',
    'http://[::1]:36789/x',
    'http://[::ffff:127.0.0.1]:36789/x',
    'http://10.1.2.3:36789/x',
    'http://127.0.0.1:9464/metrics',
    'http://redis.internal:6379/',
    'http://127.0.0.1:6379/',
    'http://localhost:6379/',
    'http://10.9.9.9:9092/',
  ])("when a URL points at the TM's own port or services (%s), then it is refused", (url) => {
    const p = policy({
      ownPorts: [36789, 9464],
      services: [
        { host: 'redis.internal', port: 6379 },
        { host: 'localhost', port: 6379 },
        { host: '10.9.9.9', port: 9092 },
      ],
    });
    expect(p.refusal(url)).toMatch(/own endpoint/);
  });

  it('when an own port is on another host, or another port on this host, then it is allowed (RMs live there)', () => {
    const p = policy({ ownPorts: [36789], services: [{ host: 'redis.internal', port: 6379 }] });
    expect(p.refusal('http://rm.internal:36789/x')).toBeNull();
    expect(p.refusal('http://127.0.0.1:8081/TransIn')).toBeNull();
    expect(p.refusal('http://localhost:8081/TransIn')).toBeNull();
    expect(p.refusal('http://192.168.1.20/TransIn')).toBeNull();
    expect(p.refusal('http://redis.internal:8080/x')).toBeNull();
  });

  it('when the API learns its port after listening, then that port is refused too', () => {
    const p = policy();
    expect(p.refusal('http://127.0.0.1:41234/api/dtmsvr/forceStop')).toBeNull();
    p.addOwnPort(41234);
    expect(p.refusal('http://127.0.0.1:41234/api/dtmsvr/forceStop')).toMatch(/own endpoint/);
  });

  it('when OUTBOUND_DENY lists hosts, suffixes, CIDRs and host:port, then matches are refused and others not', () => {
    const p = policy({ deny: '127.0.0.0/8, .corp.example, db.internal, 10.0.0.0/8:5432, [fd00::/8]:443' });
    expect(p.refusal('http://127.0.0.1:8081/x')).toMatch(/OUTBOUND_DENY entry '127.0.0.0\/8'/);
    expect(p.refusal('http://[::ffff:127.0.0.1]:8081/x')).toMatch(/OUTBOUND_DENY/);
    expect(p.refusal('http://a.b.corp.example/x')).toMatch(/'.corp.example'/);
    expect(p.refusal('http://corp.example/x')).toBeNull();
    expect(p.refusal('http://db.internal/x')).toMatch(/'db.internal'/);
    expect(p.refusal('http://10.2.3.4:5432/x')).toMatch(/'10.0.0.0\/8:5432'/);
    expect(p.refusal('http://10.2.3.4:8080/x')).toBeNull();
    expect(p.refusal('https://[fd12::1]/x')).toMatch(/OUTBOUND_DENY/);
    expect(p.refusal('http://[fd12::1]/x')).toBeNull();
    expect(p.refusal('http://localhost:8081/x')).toBeNull(); // a name: checked on its addresses at connect time
  });

  it('when OUTBOUND_ALLOW is set, then only matches are allowed and deny still wins', () => {
    const p = policy({ allow: '.rm.internal, 10.0.0.0/8', deny: 'bad.rm.internal' });
    expect(p.refusal('http://pay.rm.internal/x')).toBeNull();
    expect(p.refusal('http://10.2.3.4/x')).toBeNull();
    expect(p.refusal('http://192.168.1.1/x')).toMatch(/matches no OUTBOUND_ALLOW entry/);
    expect(p.refusal('http://bad.rm.internal/x')).toMatch(/OUTBOUND_DENY/);
  });

  it('when OUTBOUND_ALLOW names a built-in denial, then it is lifted; a catch-all never lifts it, nor own endpoints', () => {
    expect(policy({ allow: '169.254.169.254' }).refusal('http://169.254.169.254/x')).toBeNull();
    expect(policy({ allow: '*' }).refusal('http://169.254.169.254/x')).toMatch(/denied by default/);
    expect(policy({ allow: '0.0.0.0/0' }).refusal('http://169.254.169.254/x')).toMatch(/denied by default/);
    expect(policy({ allow: '127.0.0.1', ownPorts: [36789] }).refusal('http://127.0.0.1:36789/x')).toMatch(/own/);
  });

  it('when a gRPC target or host:port is given, then the same rules apply (transport-agnostic)', () => {
    const p = policy({ ownPorts: [36790] });
    expect(p.refusal('169.254.169.254:50051/pkg.Svc/Method')).toMatch(/denied by default/);
    expect(p.refusal('dns:///127.0.0.1:36790/pkg.Svc/Method')).toMatch(/own endpoint/);
    expect(p.refusal('rm.internal:50051/pkg.Svc/Method')).toBeNull();
    expect(p.refusal('169.254.169.254', 50051)).toMatch(/^169.254.169.254:50051: /);
    expect(p.refusal('[::ffff:a9fe:a9fe]', 443)).toMatch(/denied by default/);
    expect(p.refusal('rm.internal', 50051)).toBeNull();
  });

  it('when a kafka:// step names a topic, then KAFKA_TOPIC_ALLOW globs decide, and internal topics are refused', () => {
    expect(policy().refusal('kafka://orders')).toBeNull();
    expect(policy().refusal('kafka://__consumer_offsets')).toMatch(/internal Kafka topic/);
    const p = policy({ kafkaTopicAllow: 'orders.*, audit-?' });
    expect(p.refusal('kafka://orders.v1')).toBeNull();
    expect(p.refusal('kafka://audit-1')).toBeNull();
    expect(p.refusal('kafka://audit-12')).toMatch(/matches no KAFKA_TOPIC_ALLOW pattern/);
    expect(p.refusal('kafka://ordersXv1')).toMatch(/KAFKA_TOPIC_ALLOW/); // the dot is literal
    expect(p.topicRefusal('payments')).toMatch(/kafka:\/\/payments/);
  });

  it('when a list entry cannot be read, then the policy refuses to start, naming it', () => {
    expect(() => policy({ deny: '10.0.0.0/33' })).toThrow(OutboundRuleError);
    expect(() => policy({ deny: 'a b' })).toThrow(/OUTBOUND_DENY: 'a b'/);
    expect(() => policy({ allow: 'host:99999' })).toThrow(/OUTBOUND_ALLOW: 'host:99999' has no valid port/);
    expect(() => policy({ kafkaTopicAllow: 'orders/(.*)' })).toThrow(/KAFKA_TOPIC_ALLOW/);
  });
});

describe('outbound policy at connect time (every resolved address)', () => {
  it('when a name resolves to a metadata address, then the connection is refused, naming both', async () => {
    const p = policy({}, { 'rebind.test': ['192.168.1.20', '169.254.169.254'] });
    expect(p.refusal('http://rebind.test/x')).toBeNull();
    const err = await p.resolveAllowed('rebind.test', 80).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutboundRefused);
    expect((err as Error).message).toMatch(/rebind\.test resolved to 169\.254\.169\.254.*denied by default/);
  });

  it('when a name resolves to an IPv4-mapped metadata address, then it is refused', async () => {
    const p = policy({}, { 'mapped.test': ['::ffff:a9fe:a9fe'] });
    await expect(p.resolveAllowed('mapped.test', 80)).rejects.toThrow(/denied by default/);
  });

  it('when a name resolves to loopback and OUTBOUND_DENY covers it, then it is refused; allowed by default', async () => {
    const names = { localhost: ['127.0.0.1', '::1'] };
    await expect(policy({}, names).resolveAllowed('localhost', 8081)).resolves.toHaveLength(2);
    await expect(policy({ deny: '127.0.0.0/8,::1' }, names).resolveAllowed('localhost', 8081)).rejects.toThrow(
      /localhost resolved to 127\.0\.0\.1, which matches OUTBOUND_DENY entry '127.0.0.0\/8'/,
    );
  });

  it('when a name resolves to a service of the TM (its Redis), then it is refused though the name differs', async () => {
    const p = policy(
      { services: [{ host: 'redis.internal', port: 6379 }] },
      { 'redis.internal': ['10.5.5.5'], 'alias.test': ['10.5.5.5'] },
    );
    await expect(p.resolveAllowed('alias.test', 6379)).rejects.toThrow(/own endpoint/);
    await expect(p.resolveAllowed('alias.test', 8080)).resolves.toHaveLength(1);
  });

  it('when OUTBOUND_ALLOW holds CIDRs, then a name passes submit and is judged on the addresses it resolves to', async () => {
    const p = policy(
      { allow: '10.0.0.0/8, .rm.internal' },
      { 'pay.example': ['10.1.1.1'], 'evil.example': ['192.168.1.1'] },
    );
    expect(p.refusal('http://pay.example/x')).toBeNull();
    expect(p.refusal('http://192.168.1.1/x')).toMatch(/matches no OUTBOUND_ALLOW entry/);
    await expect(p.resolveAllowed('pay.example', 80)).resolves.toHaveLength(1);
    await expect(p.resolveAllowed('evil.example', 80)).rejects.toThrow(
      /evil\.example resolved to 192\.168\.1\.1, which matches no OUTBOUND_ALLOW entry/,
    );
    // With names only in the list, a name outside it is refused at submit already.
    expect(policy({ allow: '.rm.internal' }).refusal('http://pay.example/x')).toMatch(/matches no OUTBOUND_ALLOW/);
  });

  it('when an IP literal is connected to, then it is checked as it is, without resolving', async () => {
    const p = policy({ ownPorts: [36789] });
    await expect(p.resolveAllowed('169.254.169.254', 80)).rejects.toThrow(OutboundRefused);
    await expect(p.resolveAllowed('::1', 36789)).rejects.toThrow(/own endpoint/);
    await expect(p.resolveAllowed('127.0.0.1', 8081)).resolves.toEqual([{ address: '127.0.0.1', family: 4 }]);
  });
});
