import { defineConfig } from 'vitest/config';

/**
 * `npm run test:failover`: the Redis Cluster failover test, on its own. It passes on a quiet machine; under the full
 * suite's load a few passes can still stay stuck after a failover (README, Redis Cluster), so `npm test` leaves it out
 * until that is fixed.
 */
export default defineConfig({
  test: {
    include: ['test/integration/redis-cluster-failover.int.test.ts'],
    testTimeout: 90_000,
    hookTimeout: 90_000,
  },
});
