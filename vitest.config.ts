import { defineConfig } from 'vitest/config';

/** The engine's integration suite, which runs on both event logs (issue 5). */
const engineSuite = [
  'test/integration/saga.int.test.ts',
  'test/integration/api.int.test.ts',
  'test/integration/retry-schedule.int.test.ts',
  'test/integration/tcc-xa.int.test.ts',
  'test/integration/msg.int.test.ts',
  'test/integration/read-model-rebuild.int.test.ts',
  'test/integration/replay.int.test.ts',
];

export default defineConfig({
  test: {
    // Integration files start their own redis-server and processes; two at a time suits a 2-core machine.
    maxWorkers: 2,
    minWorkers: 1,
    projects: [
      {
        test: {
          name: 'unit',
          include: [
            'shared/**/*.unit.test.ts',
            'services/**/*.unit.test.ts',
            'test/support/**/*.unit.test.ts',
            'test/chaos/**/*.unit.test.ts',
          ],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.int.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          // The same files again with the event log in EventStoreDB (the in-process gRPC fake, or ESDB_URL).
          name: 'integration-esdb',
          include: engineSuite,
          env: { TEST_EVENT_STORE: 'esdb' },
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
