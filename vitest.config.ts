import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
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
          // Files start their own redis-server and processes; two at a time keeps a 2-core machine honest.
          fileParallelism: true,
          maxWorkers: 2,
          minWorkers: 1,
        },
      },
    ],
  },
});
