import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './index';

describe('event store selection', () => {
  it('when nothing is set, then the log is in Redis', () => {
    expect(loadConfig({})).toMatchObject({ eventStore: 'redis', esdbUrl: undefined });
  });

  it('when EVENT_STORE=esdb comes with ESDB_URL, then both are kept', () => {
    const c = loadConfig({ EVENT_STORE: 'esdb', ESDB_URL: 'esdb://es:2113?tls=false' });
    expect(c).toMatchObject({ eventStore: 'esdb', esdbUrl: 'esdb://es:2113?tls=false' });
    expect(loadConfig({ EVENT_STORE: 'esdb', ESDB_URL: 'esdb+discover://a:2113,b:2113' }).esdbUrl).toBe(
      'esdb+discover://a:2113,b:2113',
    );
  });

  it('when EVENT_STORE=esdb comes without ESDB_URL, then the error names ESDB_URL', () => {
    expect(() => loadConfig({ EVENT_STORE: 'esdb' })).toThrow(ConfigError);
    expect(() => loadConfig({ EVENT_STORE: 'esdb' })).toThrow(/ESDB_URL: required when EVENT_STORE=esdb/);
    // The same check holds for overrides (tests and embedders pass them instead of variables).
    expect(() => loadConfig({}, { eventStore: 'esdb' })).toThrow(/ESDB_URL/);
  });

  it('when EVENT_STORE or ESDB_URL is malformed, then each is named', () => {
    const bad = () => loadConfig({ EVENT_STORE: 'mongo', ESDB_URL: 'http://es:2113' });
    expect(bad).toThrow(/EVENT_STORE="mongo"/);
    expect(bad).toThrow(/ESDB_URL="http:\/\/es:2113"/);
  });
});
