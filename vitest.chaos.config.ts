import { defineConfig } from 'vitest/config';

// The chaos scenario (test/*.scenario.ts): long fault runs kept out of `pnpm test`, run by
// `bash scripts/chaos.sh N` (docs/cluster.md, "The chaos scenario").
const resolve = { conditions: ['source', 'import', 'node', 'default'] };

export default defineConfig({
  resolve,
  ssr: { resolve: { conditions: ['source'], externalConditions: ['source'] } },
  test: {
    name: 'chaos',
    setupFiles: ['test/setup/no-warnings.ts'],
    include: ['test/**/*.scenario.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    fileParallelism: false,
    testTimeout: 240_000,
    hookTimeout: 60_000,
  },
});
