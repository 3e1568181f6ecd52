import { defineConfig } from 'vitest/config';

// The system suite: tests that need system services (Chromium, network namespaces, ...). Run by
// `npm run test:system` after `npm test` in .ci/run; each test starts its own services and fails loudly without them.
export default defineConfig({
  test: {
    include: ['test/system/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 20_000,
    reporters: process.env.P2PSYNC_VITEST_JSON ? ['default', 'json'] : ['default'],
    outputFile: process.env.P2PSYNC_VITEST_JSON ? { json: process.env.P2PSYNC_VITEST_JSON } : undefined,
  },
});
