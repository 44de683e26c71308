/**
 * What the CI fuzz test (test/unit/fuzz.test.ts), the long fuzz (long.fuzz.ts) and the
 * corpus replay (test/unit/fuzz-regressions.test.ts) share: per-target generator options,
 * the timed run with hang detection, and the corpus layout.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type fc from 'fast-check';
import { fixTsPsiCrc, inputArbitrary, type MutationOptions } from './mutate.js';
import type { SeedSet } from './seeds.js';
import { ContractViolation, type FuzzOutcome, type FuzzTarget } from './targets.js';

export const FUZZ_DIR = dirname(fileURLToPath(import.meta.url));
export const CORPUS_DIR = join(FUZZ_DIR, 'corpus');
export const FINDINGS_DIR = join(FUZZ_DIR, 'findings');

/**
 * Hang detection: the slowest legitimate input takes a few milliseconds; a codec stuck in
 * a loop takes forever. The threshold is far from both so it never flakes on a slow CI.
 */
export const HANG_MS = 2000;

/** MPEG-TS is mutated packet-wise, with PSI checksums repaired half of the time. */
export const MUTATION_OPTIONS: Readonly<Record<string, MutationOptions>> = {
  'mpegts-demux': { stride: 188, fixup: fixTsPsiCrc },
};

export function arbitraryFor(target: FuzzTarget, seeds: SeedSet): fc.Arbitrary<Buffer> {
  const list = seeds[target.name];
  if (list === undefined || list.length === 0) throw new Error(`no seeds for fuzz target ${target.name}`);
  return inputArbitrary(list, MUTATION_OPTIONS[target.name]);
}

/** run() plus the clock: an input slower than HANG_MS is a finding like an escaping error. */
export function timedRun(target: FuzzTarget, input: Buffer): { outcome: FuzzOutcome; ms: number } {
  const t0 = performance.now();
  const outcome = target.run(input);
  const ms = performance.now() - t0;
  if (ms > HANG_MS) throw new ContractViolation(target.name, `one input of ${input.length} bytes took ${Math.round(ms)} ms (limit ${HANG_MS} ms)`);
  return { outcome, ms };
}

export interface CorpusFile {
  target: string;
  file: string;
  /** `<target>/<file>`, as the README and the known-bug list name it. */
  id: string;
  bytes: Buffer;
}

/** Every test/fuzz/corpus/<target>/*.bin, sorted, so the replay order is stable. */
export function readCorpus(): CorpusFile[] {
  const out: CorpusFile[] = [];
  for (const target of readdirSync(CORPUS_DIR, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort()) {
    for (const file of readdirSync(join(CORPUS_DIR, target)).filter((f) => f.endsWith('.bin')).sort()) {
      out.push({ target, file, id: `${target}/${file}`, bytes: readFileSync(join(CORPUS_DIR, target, file)) });
    }
  }
  return out;
}
