import { defineConfig } from 'vitest/config';

/**
 * The system suite: tests that need system services or root (network namespaces, coturn, ...). `.ci/run`
 * installs the Debian packages they need; a test that cannot get its service fails, it never skips.
 */
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
