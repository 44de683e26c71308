#!/usr/bin/env node
// npm run fuzz -- [--seconds N] [--target NAME[,NAME...]] [--seed N]
// npm run fuzz -- --write-corpus   (rewrites the hand-built corpus files and their README list)
// Runs the long fuzz (test/fuzz/long.fuzz.ts) through vitest, which compiles the
// TypeScript; the options travel as FUZZ_* environment variables. See test/fuzz/README.md.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const USAGE = 'usage: npm run fuzz -- [--seconds N] [--target NAME[,NAME...]] [--seed N] | --write-corpus';
const OPTIONS = { '--seconds': 'FUZZ_SECONDS', '--target': 'FUZZ_TARGET', '--seed': 'FUZZ_SEED' };

const env = { ...process.env };
let file = 'test/fuzz/long.fuzz.ts';
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const arg = args[i];
  if (arg === '--help' || arg === '-h') {
    console.log(USAGE);
    process.exit(0);
  }
  if (arg === '--write-corpus') {
    env.FUZZ_WRITE_CORPUS = '1';
    file = 'test/fuzz/corpus.fuzz.ts';
    continue;
  }
  const eq = arg.indexOf('=');
  const flag = eq < 0 ? arg : arg.slice(0, eq);
  const value = eq < 0 ? args[++i] : arg.slice(eq + 1);
  const key = OPTIONS[flag];
  if (key === undefined || value === undefined || value === '') {
    console.error(`bad option ${arg}\n${USAGE}`);
    process.exit(2);
  }
  env[key] = value;
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const child = spawn(process.execPath, [vitest, 'run', '--config', 'test/fuzz/vitest.config.ts', file], { cwd: root, env, stdio: 'inherit' });
child.on('error', (err) => {
  console.error(`could not start vitest: ${err.message}`);
  process.exit(1);
});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
