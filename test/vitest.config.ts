import { defineConfig } from 'vitest/config';

/** Tests that spawn the binary, RxDB fixtures or other processes; everything else is a fast in-process unit test. */
const PROCESS_TESTS = [
  'test/e2e/**/*.test.ts',
  'test/interop/**/*.test.ts',
  'test/cli/**/*.test.ts',
  'test/signaling/signal-cli.test.ts',
  'test/signaling/client-wire.test.ts',
];

export default defineConfig({
  test: {
    // forks suit the native WebRTC addon and signal handling; process-test files run one at a time because they
    // spawn several processes each and the machine has 2 cores (the unit project overrides this below).
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    teardownTimeout: 10_000,
    // .ci/run asks for a JSON report to print vitest's own pass/fail counts.
    reporters: process.env.P2PSYNC_VITEST_JSON ? ['default', 'json'] : ['default'],
    outputFile: process.env.P2PSYNC_VITEST_JSON ? { json: process.env.P2PSYNC_VITEST_JSON } : undefined,
    // `npm run test:fast` runs the `unit` project alone; `npm test` runs both. test/system/ has its own config.
    projects: [
      // Unit files run in-process (a few spawn a small helper) and share nothing: two at a time use both cores.
      // They run first (group 0); the process tests then run one file at a time (group 1).
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/system/**', ...PROCESS_TESTS],
          fileParallelism: true,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      { extends: true, test: { name: 'e2e', include: PROCESS_TESTS, sequence: { groupOrder: 1 } } },
    ],
  },
});
