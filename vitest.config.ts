import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // TensorFlow.js backends are process-global: one file at a time, each in its own fork.
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 300_000,
    projects: [
      { extends: true, test: { name: 'unit', include: ['tests/**/*.test.ts'] } },
      // The e2e files share one site build per run, made by their globalSetup (only when an e2e file runs).
      { extends: true, test: { name: 'e2e', include: ['e2e/**/*.test.ts'], globalSetup: ['e2e/global-setup.ts'] } },
    ],
  },
});
