import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, configDocs, loadConfig } from './index';

describe('configuration', () => {
  it('when nothing is set, then every key has its documented default', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ port: 36789, retryIntervalS: 10, timeoutToFailS: 35, requestTimeoutS: 3, prefix: 'dtm' });
    expect(c.redisUrl).toBeUndefined();
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('when variables are bad, then one error names every one of them', () => {
    const bad = () => loadConfig({ PORT: 'eighty', RETRY_INTERVAL: '0', REDIS_URL: 'not a url', LOG_LEVEL: 'loud' });
    expect(bad).toThrow(ConfigError);
    expect(bad).toThrow(/PORT="eighty"/);
    expect(bad).toThrow(/RETRY_INTERVAL="0"/);
    expect(bad).toThrow(/REDIS_URL="not a url"/);
    expect(bad).toThrow(/LOG_LEVEL="loud"/);
  });

  it('when variables are set, then they are parsed to their types', () => {
    const c = loadConfig({ PORT: '8080', REDIS_URL: 'redis://h:1/2', INLINE_PASSES: '0', RETRY_BACKOFF_CAP: '60' });
    expect(c).toMatchObject({ port: 8080, redisUrl: 'redis://h:1/2', inlinePasses: 0, backoffCapS: 60 });
  });

  it('documents every variable in the README table with its default', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    for (const d of configDocs()) {
      const cells = readme
        .split('\n')
        .map((l) => l.split('|').map((c) => c.trim()))
        .find((c) => c[1] === `\`${d.env}\``);
      expect(cells, `README has no row for ${d.env}`).toBeDefined();
      expect(cells![2]).toBe(d.default === '' ? '—' : `\`${d.default}\``);
    }
  });
});
