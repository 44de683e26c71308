import { defineConfig } from 'vitest/config';

// End-to-end tests drive real ffmpeg processes over loopback; they are slow by nature,
// so the per-test timeout is generous. Nothing asserts on elapsed time.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
  },
});
