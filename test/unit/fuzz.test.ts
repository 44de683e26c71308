/**
 * The cross-codec fuzz harness in CI: every target in test/fuzz/targets.ts gets a bounded
 * number of mutated-seed inputs from a fixed fast-check seed, so a run is reproducible
 * and its time is bounded. The longer, random-seed run is `npm run fuzz` (test/fuzz/README.md).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { arbitraryFor, HANG_MS, timedRun } from '../fuzz/harness.js';
import { fixTsPsiCrc } from '../fuzz/mutate.js';
import { buildSeeds, makeMediaFiles, type SeedSet } from '../fuzz/seeds.js';
import { TARGETS, type FuzzTarget } from '../fuzz/targets.js';

const SEED = 20_250_601;

/**
 * Inputs per target, sized by each target's cost so the whole file takes about 5 s on
 * one core (88,000 inputs); the CI budget is 20 s on a busy two-core machine.
 */
const RUNS: Record<string, number> = {
  'rtmp-chunks': 5000,
  'rtmp-handshake': 5000,
  'rtmp-client-handshake': 5000,
  'rtmp-command': 10_000,
  amf0: 10_000,
  'rtmp-aggregate': 10_000,
  'rtmp-control': 5000,
  'flv-tag': 20_000,
  'mpegts-demux': 3000,
  'mpegts-mux': 5000,
  'srt-stream-id': 10_000,
};

/**
 * Distinct ProtocolError codes a target's inputs must provoke: proof that the generators
 * reach several rejection paths, not just the first length check. Codecs that never
 * throw, or have a single code, are not counted.
 */
const MIN_ERROR_CODES: Record<string, number> = {
  'rtmp-chunks': 5,
  'rtmp-handshake': 4,
  'rtmp-client-handshake': 3,
  'rtmp-command': 3,
  amf0: 2,
  'rtmp-aggregate': 1,
  'flv-tag': 1,
};

interface Tally {
  runs: number;
  errors: number;
  reachedOutput: number;
  codes: Set<string>;
  slowestMs: number;
}

function fuzz(target: FuzzTarget, seeds: SeedSet): Tally {
  const tally: Tally = { runs: 0, errors: 0, reachedOutput: 0, codes: new Set(), slowestMs: 0 };
  fc.assert(
    fc.property(arbitraryFor(target, seeds), (input) => {
      const { outcome, ms } = timedRun(target, input);
      tally.slowestMs = Math.max(tally.slowestMs, ms);
      tally.runs += 1;
      if (outcome.error !== undefined) {
        tally.errors += 1;
        tally.codes.add(outcome.error);
      }
      if (outcome.outputs > 0) tally.reachedOutput += 1;
    }),
    { seed: SEED, numRuns: RUNS[target.name] ?? 200 },
  );
  return tally;
}

describe('fuzzing every codec with mutated real streams (fixed seed)', () => {
  let seeds: SeedSet;

  beforeAll(async () => {
    seeds = buildSeeds(await makeMediaFiles());
  }, 30_000);

  it('has seeds and a run budget for every target', () => {
    for (const t of TARGETS) {
      expect(seeds[t.name]?.length, t.name).toBeGreaterThanOrEqual(3);
      expect(RUNS[t.name], t.name).toBeDefined();
    }
  });

  it('the seeds themselves are accepted by their targets', () => {
    for (const t of TARGETS) {
      for (const [i, seed] of seeds[t.name]!.entries()) {
        const outcome = t.run(seed);
        expect(outcome.error, `${t.name} seed ${i}`).toBeUndefined();
        expect(outcome.outputs, `${t.name} seed ${i}`).toBeGreaterThan(0);
      }
    }
  });

  it('repairing PSI checksums leaves a valid stream as it was and repairs a broken CRC', () => {
    for (const ts of seeds['mpegts-demux']!) expect(fixTsPsiCrc(ts).equals(ts)).toBe(true);
    // The first PAT (PID 0) and PMT (ffmpeg's PID 0x1000), each one section after pointer_field 0.
    const ts = seeds['mpegts-demux']![0]!;
    const broken = Buffer.from(ts);
    const pidAt = (p: number): number => ts.readUInt16BE(p + 1) & 0x1fff;
    const firstOf = (pid: number): number => Array.from({ length: 10 }, (_, i) => i * 188).find((p) => pidAt(p) === pid)!;
    for (const p of [firstOf(0), firstOf(0x1000)]) {
      const crcEnd = p + 5 + 3 + (broken.readUInt16BE(p + 6) & 0x0fff);
      broken[crcEnd - 1] = (broken[crcEnd - 1] as number) ^ 0xff;
    }
    expect(broken.equals(ts)).toBe(false);
    expect(fixTsPsiCrc(broken).equals(ts)).toBe(true);
  });

  for (const target of TARGETS) {
    it(`${target.name}: only typed errors, bounded output, no hang`, () => {
      const tally = fuzz(target, seeds);
      // The generators must reach past the outer framing, and (for codecs that reject
      // input) into more than one rejection path, or the property proves little.
      expect(tally.reachedOutput / tally.runs, 'share of inputs that produced output').toBeGreaterThan(0.15);
      const minCodes = MIN_ERROR_CODES[target.name] ?? 0;
      if (minCodes > 0) {
        expect(tally.errors / tally.runs, 'share of inputs rejected').toBeGreaterThan(0.05);
        expect(tally.codes.size, [...tally.codes].join(', ')).toBeGreaterThanOrEqual(minCodes);
      }
      expect(tally.slowestMs).toBeLessThan(HANG_MS);
    });
  }
});
