import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Integration files start their own redis-server and processes; two at a time suits a 2-core machine.
    maxWorkers: 2,
    minWorkers: 1,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['shared/**/*.unit.test.ts', 'services/**/*.unit.test.ts'],
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
    ],
  },
});
