import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // system tests (Chromium, network namespaces...) run in their own suite: test/vitest.system.config.ts
    exclude: ['test/system/**', '**/node_modules/**'],
    // forks suit the native WebRTC addon and signal handling; files run one at a time because end-to-end files
    // spawn several processes each and the machine has 2 cores.
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    teardownTimeout: 10_000,
    // .ci/run asks for a JSON report to print vitest's own pass/fail counts.
    reporters: process.env.P2PSYNC_VITEST_JSON ? ['default', 'json'] : ['default'],
    outputFile: process.env.P2PSYNC_VITEST_JSON ? { json: process.env.P2PSYNC_VITEST_JSON } : undefined,
  },
});
