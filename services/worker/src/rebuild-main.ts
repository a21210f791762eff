import { loadConfig } from '@dtm-ts/config';
import { createInfra } from '@dtm-ts/runtime';
import { createLogger } from '@dtm-ts/telemetry';
import { randomUUID } from 'node:crypto';
import { RedisReadModel, scanKeys } from '@dtm-ts/adapters';
import { rebuildReadModel, verifyReadModel } from './rebuild';
import { progressLine } from './progress';

/**
 * `npm run read-model:rebuild`: replays the whole log into the read model, then exits.
 * `-- --verify`: rebuilds into a scratch read model instead and compares it with the live one
 * (exit 1 when they differ), then removes the scratch keys.
 */
const main = async (): Promise<void> => {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel, 'dtm-rebuild');
  const infra = await createInfra(config, logger, { manageRedis: true });
  const started = Date.now();
  const progress = progressLine(process.stderr, 'read-model:rebuild', 'transactions');
  if (process.argv.includes('--verify')) {
    const scratch = `${config.prefix}-verify-${randomUUID().slice(0, 8)}`;
    const fresh = new RedisReadModel(infra.redis, { prefix: scratch, partitions: config.partitions });
    try {
      const r = await verifyReadModel({
        log: infra.log,
        feed: infra.log,
        readModel: infra.readModel,
        fresh,
        requestTimeoutMs: config.requestTimeoutS * 1000,
        retentionMs: config.finishedRetentionS * 1000,
        policy: infra.policy,
        onProgress: (n) => progress.add(n),
      });
      progress.done();
      logger.info(
        {
          transactions: r.transactions,
          compared: r.compared,
          differences: r.differences.length,
          ms: Date.now() - started,
        },
        'verified',
      );
      for (const d of r.differences.slice(0, 50)) process.stdout.write(`${JSON.stringify(d)}\n`);
      process.exitCode = r.differences.length ? 1 : 0;
    } finally {
      // SCAN of every master, not KEYS: this runs against a live Redis. One DEL per key: on a cluster the
      // scratch keys of different partitions live in different slots.
      for await (const keys of scanKeys(infra.redis, `${scratch}:*`)) {
        await Promise.all(keys.map((k) => infra.redis.del(k)));
      }
      await infra.close();
    }
    return;
  }
  const n = await rebuildReadModel({
    log: infra.log,
    feed: infra.log,
    readModel: infra.readModel,
    requestTimeoutMs: config.requestTimeoutS * 1000,
    retentionMs: config.finishedRetentionS * 1000,
    policy: infra.policy,
    onProgress: (k) => progress.add(k),
  });
  progress.done();
  logger.info({ transactions: n, ms: Date.now() - started }, 'read model rebuilt from the log');
  await infra.close();
};

main().catch((err: unknown) => {
  process.stderr.write(`dtm-rebuild: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
