import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';
import { MSG_BARRIER, type BarrierOutcome, type BranchBarrier, type RedisBarrierLike } from './barrier';
import { DtmDuplicated, DtmFailure } from './errors';

/** Read once at module load: a missing file fails at import, not on the first call. */
const script = (file: string) => {
  const lua = readFileSync(new URL(`./lua/${file}`, import.meta.url), 'utf8');
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
};
const CHECK_ADJUST = script('check-adjust-amount-3.lua');
const QUERY_PREPARED = script('query-prepared-1.lua');

/** Options of {@link RedisBarrierStore}. */
export interface RedisBarrierOptions {
  /** Expiry of barrier keys, seconds: longer than any transaction can take to finish. Default 7 days. */
  readonly expireS?: number;
}

const ORIGIN_OP: Readonly<Record<string, string>> = { cancel: 'try', compensate: 'action' };

/**
 * The barrier on Redis through ioredis (reference §7, `barrier_redis.go`): each call is one Lua script, so the check
 * and the adjustment are atomic. Barrier keys are `<gid>-<branch_id>-<op>-<barrier_id>`; on Redis Cluster, give the
 * balance keys and gids a common hash tag, or the script's keys land in different slots.
 */
export class RedisBarrierStore implements RedisBarrierLike {
  readonly kind = 'redis';
  readonly expireS: number;

  constructor(
    readonly redis: Redis | Cluster,
    opts: RedisBarrierOptions = {},
  ) {
    this.expireS = opts.expireS ?? 7 * 24 * 3600;
  }

  /** EVALSHA, falling back to EVAL when the server does not have the script cached (a restart, a new server). */
  private async run(s: { lua: string; sha: string }, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await this.redis.evalsha(s.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error && err.message.includes('NOSCRIPT'))) throw err;
      return this.redis.eval(s.lua, keys.length, ...keys, ...args);
    }
  }

  /** See {@link BranchBarrier.redisCheckAdjustAmount}. */
  async checkAdjustAmount(bb: BranchBarrier, key: string, amount: number): Promise<BarrierOutcome<void>> {
    if (!Number.isSafeInteger(amount)) throw new TypeError(`amount must be an integer, got ${amount}`);
    const bid = bb.nextBarrierId();
    const origin = ORIGIN_OP[bb.op] ?? '';
    const reply = await this.run(
      CHECK_ADJUST,
      [key, `${bb.gid}-${bb.branchId}-${bb.op}-${bid}`, `${bb.gid}-${bb.branchId}-${origin}-${bid}`],
      [amount, origin, this.expireS],
    );
    // For a message's local step any existing mark (its own, or the check-back's 'rollback') is a repeat (§7 step 4).
    if (bb.op === MSG_BARRIER.op && (reply === 'DUPLICATE' || reply === 'HANGING')) {
      throw new DtmDuplicated(`msg ${bb.gid}: its local step ran already, or the check-back sealed it`);
    }
    switch (reply) {
      case 'OK':
        return { status: 'executed', value: undefined };
      case 'NULL_COMPENSATION':
        return { status: 'skipped', reason: 'null-compensation' };
      case 'HANGING':
        return { status: 'skipped', reason: 'hanging' };
      case 'DUPLICATE':
        return { status: 'skipped', reason: 'duplicate' };
      case 'FAILURE':
        throw new DtmFailure(`${key}: missing, or not enough for ${amount}`);
      default:
        throw new Error(`check-adjust-amount script replied ${JSON.stringify(reply)}`);
    }
  }

  /** The msg check-back on Redis; see {@link BranchBarrier.queryPrepared}. */
  async queryPrepared(bb: BranchBarrier): Promise<void> {
    const key = `${bb.gid}-${MSG_BARRIER.branchId}-${MSG_BARRIER.op}-${MSG_BARRIER.barrierId}`;
    const reply = await this.run(QUERY_PREPARED, [key], [this.expireS]);
    if (reply === 'FAILURE') throw new DtmFailure(`msg ${bb.gid}: the local step never ran`);
  }
}
