import { defineConfig } from 'vitest/config';

// The long fuzz run (npm run fuzz; see README.md): only *.fuzz.ts files, which the main
// config leaves out, with a test timeout that follows the requested duration.
const seconds = Number(process.env.FUZZ_SECONDS ?? '60');

export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/fuzz/**/*.fuzz.ts'],
    // The run itself, then shrinking a finding (up to a minute per target), then slack.
    testTimeout: (Number.isFinite(seconds) && seconds > 0 ? seconds : 60) * 1000 + 15 * 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 1,
  },
});
