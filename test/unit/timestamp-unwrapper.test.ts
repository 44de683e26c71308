import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { TimestampUnwrapper } from '../../src/rtmp/timestamp-unwrapper.js';

const WRAP = 0x1_0000_0000;

function unwrapAll(values: readonly number[]): number[] {
  const u = new TimestampUnwrapper();
  return values.map((v) => u.unwrap(v));
}

describe('TimestampUnwrapper', () => {
  it('passes ordinary increasing timestamps through', () => {
    expect(unwrapAll([0, 23, 40, 46, 80, 1_000_000])).toEqual([0, 23, 40, 46, 80, 1_000_000]);
  });

  it('starts at whatever the first value is', () => {
    expect(unwrapAll([0xfffffff0])).toEqual([0xfffffff0]);
    expect(unwrapAll([123456])).toEqual([123456]);
  });

  it('continues upward across the 2^32 wrap', () => {
    expect(unwrapAll([0xffffffc0, 0xffffffe0, 0x00000000, 0x00000020, 0x00000040])).toEqual([
      0xffffffc0,
      0xffffffe0,
      WRAP,
      WRAP + 0x20,
      WRAP + 0x40,
    ]);
  });

  it('continues upward across several wraps', () => {
    const u = new TimestampUnwrapper();
    const out: number[] = [];
    for (let lap = 0; lap < 4; lap++) {
      for (const v of [0, 0x40000000, 0x80000000, 0xc0000000]) out.push(u.unwrap(v));
    }
    expect(out).toEqual(Array.from({ length: 16 }, (_, i) => i * 0x40000000));
    expect(out.at(-1)).toBe(3 * WRAP + 0xc0000000);
  });

  it('passes small steps back through (interleaved tracks, encoder quirks)', () => {
    expect(unwrapAll([1000, 990, 1010, 1005, 1040])).toEqual([1000, 990, 1010, 1005, 1040]);
  });

  it('passes small steps back through after a wrap, in the new epoch', () => {
    expect(unwrapAll([0xfffffff0, 0x10, 0x08, 0x30])).toEqual([0xfffffff0, WRAP + 0x10, WRAP + 0x08, WRAP + 0x30]);
  });

  it('takes a late pre-wrap value just after the wrap as belonging to the old epoch', () => {
    // Audio and video interleave around the wrap: a straggler from before it must not jump ahead 49 days.
    expect(unwrapAll([0xfffffff0, 0x10, 0xfffffff8, 0x20])).toEqual([0xfffffff0, WRAP + 0x10, 0xfffffff8, WRAP + 0x20]);
  });

  it('does not treat a large forward jump before any wrap as a step back into a negative epoch', () => {
    expect(unwrapAll([0x10, 0x90000000, 0x90000010])).toEqual([0x10, 0x90000000, 0x90000010]);
  });

  it('treats a backward jump of exactly half the range as a step back, and one more as a wrap', () => {
    expect(unwrapAll([0x80000000, 0])).toEqual([0x80000000, 0]);
    expect(unwrapAll([0x80000001, 0])).toEqual([0x80000001, WRAP]);
  });

  it('repeated values stay put', () => {
    expect(unwrapAll([5, 5, 5])).toEqual([5, 5, 5]);
    expect(unwrapAll([0xffffffff, 0, 0, 0])).toEqual([0xffffffff, WRAP, WRAP, WRAP]);
  });

  it('keeps each instance independent', () => {
    const a = new TimestampUnwrapper();
    const b = new TimestampUnwrapper();
    a.unwrap(0xfffffff0);
    expect(a.unwrap(0x10)).toBe(WRAP + 0x10);
    expect(b.unwrap(0x10)).toBe(0x10);
  });

  it('turns a steadily advancing 32-bit clock into the true unwrapped time', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3 * WRAP }),
        fc.array(fc.integer({ min: 0, max: 0x7fffffff }), { minLength: 1, maxLength: 50 }),
        (start, steps) => {
          const u = new TimestampUnwrapper();
          let truth = start;
          // The first value sets the epoch to zero: compare relative to the first output.
          const first = u.unwrap(truth % WRAP);
          for (const step of steps) {
            truth += step;
            expect(u.unwrap(truth % WRAP) - first).toBe(truth - start);
          }
        },
      ),
      { seed: 42, numRuns: 500 },
    );
  });
});
