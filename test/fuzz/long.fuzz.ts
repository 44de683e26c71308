/**
 * The long fuzz run: random fast-check seeds over every target (or FUZZ_TARGET) for
 * FUZZ_SECONDS in total, with the same generators and contract as the CI test. Each
 * failing input is shrunk and written to test/fuzz/findings/ with a note of what broke;
 * an input that hangs a codec is written there by the watchdog before the process is killed.
 *
 * Not part of `vitest run` (its name does not end in .test.ts). Run it with
 * `npm run fuzz -- --seconds 600 [--target NAME] [--seed N]` (test/fuzz/README.md).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import fc from 'fast-check';
import { arbitraryFor, FINDINGS_DIR, HANG_MS, timedRun } from './harness.js';
import { buildSeeds, makeMediaFiles, type SeedSet } from './seeds.js';
import { TARGETS, targetByName, type FuzzTarget } from './targets.js';
import { HangWatchdog } from './watchdog.js';

const SECONDS = Number(process.env.FUZZ_SECONDS ?? '60');
const BASE_SEED = process.env.FUZZ_SEED !== undefined && process.env.FUZZ_SEED !== '' ? Number(process.env.FUZZ_SEED) : Date.now() % 2 ** 31;
const SELECTED: readonly FuzzTarget[] = process.env.FUZZ_TARGET ? process.env.FUZZ_TARGET.split(',').map((n) => targetByName(n.trim())) : TARGETS;
/** fast-check runs per check; a new seed after each batch keeps the inputs fresh. */
const BATCH = 500;

interface Finding {
  target: string;
  file: string;
  error: string;
}

let seeds: SeedSet;
let watchdog: HangWatchdog;
const findings: Finding[] = [];

beforeAll(async () => {
  if (!Number.isFinite(SECONDS) || SECONDS <= 0) throw new Error(`FUZZ_SECONDS must be a positive number, got ${process.env.FUZZ_SECONDS}`);
  if (!Number.isSafeInteger(BASE_SEED)) throw new Error(`FUZZ_SEED must be an integer, got ${process.env.FUZZ_SEED}`);
  seeds = buildSeeds(await makeMediaFiles());
  // A run stuck five times past the CI hang limit is a hang, not a slow machine.
  watchdog = new HangWatchdog(TARGETS.map((t) => t.name), FINDINGS_DIR, 5 * HANG_MS);
}, 60_000);

afterAll(async () => {
  await watchdog?.stop();
});

function save(target: FuzzTarget, input: Buffer, error: unknown, seed: number): Finding {
  mkdirSync(FINDINGS_DIR, { recursive: true });
  const hash = createHash('sha256').update(input).digest('hex').slice(0, 12);
  const base = join(FINDINGS_DIR, `${target.name}-${hash}`);
  const message = error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ''}` : String(error);
  writeFileSync(`${base}.bin`, input);
  writeFileSync(`${base}.txt`, `target: ${target.name}\nseed: ${seed} (FUZZ_SEED=${seed} FUZZ_TARGET=${target.name})\nbytes: ${input.length}\n\n${message}\n`);
  return { target: target.name, file: `${base}.bin`, error: message.split('\n')[0]! };
}

async function fuzzTarget(target: FuzzTarget, deadline: number): Promise<{ runs: number; seeds: number }> {
  const arb = arbitraryFor(target, seeds);
  let runs = 0;
  let seed = BASE_SEED;
  let batches = 0;
  while (performance.now() < deadline) {
    const property = fc.property(arb, (input) => {
      watchdog.arm(target.name, input);
      try {
        timedRun(target, input);
      } finally {
        watchdog.disarm();
      }
    });
    // Shrinking gets the time left plus a minute; fast-check reports the smallest input so far.
    // (The option, not the 4.10 plugin of the same name, whose Plugin<unknown> type fc.check rejects.)
    const details = fc.check(property, { seed, numRuns: BATCH, interruptAfterTimeLimit: Math.max(1000, deadline - performance.now()) + 60_000 });
    runs += details.numRuns;
    batches += 1;
    if (details.failed && details.counterexample !== null) {
      findings.push(save(target, details.counterexample[0], details.errorInstance, seed));
      break; // one finding per target and run: the rest would mostly be the same bug
    }
    seed = (seed + 1) % 2 ** 31;
    // Let the test runner's messages through between batches.
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { runs, seeds: batches };
}

it(`fuzzes ${SELECTED.map((t) => t.name).join(', ')} for ${SECONDS} s (seed ${BASE_SEED})`, async () => {
  const perTarget = (SECONDS * 1000) / SELECTED.length;
  const lines: string[] = [];
  for (const target of SELECTED) {
    const t0 = performance.now();
    const { runs } = await fuzzTarget(target, t0 + perTarget);
    lines.push(`${target.name.padEnd(22)} ${String(runs).padStart(9)} inputs in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  console.log(`fuzz seed ${BASE_SEED}\n${lines.join('\n')}`);
  if (findings.length > 0) {
    const how = findings.map((f) => `  ${f.target}: ${f.error}\n    ${relative(process.cwd(), f.file)} (details in the .txt next to it)`).join('\n');
    console.log(
      `\n${findings.length} finding(s):\n${how}\n\nTo keep one as a regression fixture: copy the .bin to test/fuzz/corpus/<target>/<what-it-does>.bin,\n` +
        'add a line for it to test/fuzz/corpus/README.md, and, until the codec is fixed, list it in KNOWN_BUGS\n' +
        'in test/unit/fuzz-regressions.test.ts (see test/fuzz/README.md).',
    );
  }
  expect(findings, 'fuzz findings (see the log above)').toEqual([]);
});
