import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { RedisClient } from './client';
import type { Gid } from '@dtm-ts/domain';
import type { PassLease } from '@dtm-ts/ports';
import { RedisKeys, type RedisKeyOptions } from './keys';

const lua = (file: string): string => readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8');

type LeaseScripts = RedisClient & {
  dtmLeaseRenew(key: string, token: string, ttlMs: number): Promise<number>;
  dtmLeaseRelease(key: string, token: string): Promise<number>;
};

/** One driver per transaction at a time: `SET NX PX` with a random token, renewed and released by script. */
export class RedisPassLease implements PassLease {
  private readonly keys: RedisKeys;
  private readonly redis: LeaseScripts;

  constructor(redis: RedisClient, options: RedisKeyOptions) {
    this.keys = new RedisKeys(options);
    if (!('dtmLeaseRenew' in redis)) {
      redis.defineCommand('dtmLeaseRenew', { numberOfKeys: 1, lua: lua('lease-renew-1.lua') });
      redis.defineCommand('dtmLeaseRelease', { numberOfKeys: 1, lua: lua('lease-release-1.lua') });
    }
    this.redis = redis as LeaseScripts;
  }

  async acquire(gid: Gid, ttlMs: number): Promise<{ token: string } | { heldForMs: number }> {
    const key = this.keys.leaseKey(gid);
    const token = randomUUID();
    if ((await this.redis.set(key, token, 'PX', ttlMs, 'NX')) === 'OK') return { token };
    const left = await this.redis.pttl(key);
    // -2: released in between; -1 cannot happen (always set with PX); either way, try again soon.
    return { heldForMs: left > 0 ? left : 0 };
  }

  async renew(gid: Gid, token: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.dtmLeaseRenew(this.keys.leaseKey(gid), token, ttlMs)) === 1;
  }

  async release(gid: Gid, token: string): Promise<void> {
    await this.redis.dtmLeaseRelease(this.keys.leaseKey(gid), token);
  }
}
