import { defineConfig } from 'vitest/config';

// Two projects: fast unit tests that need nothing, and integration tests that start real
// nats-server / redis-server processes (one file at a time, so the 2-core machine is not oversubscribed).
const resolve = { conditions: ['source', 'import', 'node', 'default'] };

export default defineConfig({
  resolve,
  ssr: { resolve: { conditions: ['source'], externalConditions: ['source'] } },
  test: {
    projects: [
      {
        resolve,
        ssr: { resolve: { conditions: ['source'], externalConditions: ['source'] } },
        test: {
          name: 'unit',
          setupFiles: ['test/setup/no-warnings.ts'],
          include: ['packages/**/src/**/*.test.ts', 'loadtest/**/*.test.ts', 'deploy/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: ['**/node_modules/**', '**/dist/**', '**/*.int.test.ts'],
        },
      },
      {
        resolve,
        ssr: { resolve: { conditions: ['source'], externalConditions: ['source'] } },
        test: {
          name: 'integration',
          setupFiles: ['test/setup/no-warnings.ts'],
          include: ['packages/**/src/**/*.int.test.ts', 'test/**/*.int.test.ts', 'loadtest/**/*.int.test.ts'],
          exclude: ['**/node_modules/**', '**/dist/**'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
