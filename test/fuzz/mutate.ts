/**
 * Structure-aware-enough fuzz inputs: valid seeds (seeds.ts) with a few mutations of the
 * kinds that break parsers (byte flips, insertions, deletions, length fields overwritten
 * with 0 / 0xFFFFFF / 0x7FFFFFFF and friends, truncation, duplicated and spliced ranges),
 * plus some plain random bytes. As fast-check arbitraries, so runs are reproducible from
 * a seed and failures shrink (fewer mutations, smaller positions).
 */
import fc from 'fast-check';
import { crc32Mpeg2 } from '../../src/protocol/mpegts/crc32.js';

export type Mutation =
  | { kind: 'set'; at: number; value: number }
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'length'; at: number; width: 1 | 2 | 3 | 4; value: number; littleEndian: boolean }
  | { kind: 'truncate'; at: number }
  | { kind: 'duplicate'; from: number; count: number; to: number; times: number }
  | { kind: 'splice'; seed: number; from: number; count: number; to: number };

/** Values that make length and count fields lie. */
export const NASTY_VALUES = [0, 1, 0xff, 0x100, 0xffff, 0x10000, 0x7fffff, 0x800000, 0xffffff, 0x1000000, 0x7fffffff, 0x80000000, 0xffffffff] as const;

/** Inputs never grow past this (duplication could otherwise compound). */
export const MAX_INPUT = 512 * 1024;

export interface MutationOptions {
  /**
   * Record size of the format (188 for MPEG-TS): positions then often fall in the first
   * bytes of a record, where its headers are, and deletions and duplications often take
   * whole records (lost and repeated packets).
   */
  stride?: number;
  /**
   * Repairs checksums after mutating, so the bytes behind them get fuzzed too (a PSI
   * section with a bad CRC is dropped before anything reads it). Applied to half the inputs.
   */
  fixup?: (input: Buffer) => Buffer;
}

const mutationArb = (seedCount: number, stride: number | undefined): fc.Arbitrary<Mutation> => {
  // Positions: mostly near the start, where headers are; sometimes anywhere; with a
  // stride, often near the start of some record.
  const position =
    stride === undefined
      ? fc.oneof({ weight: 2, arbitrary: fc.nat(64) }, { weight: 3, arbitrary: fc.nat() })
      : fc.oneof(
          { weight: 1, arbitrary: fc.nat(64) },
          { weight: 1, arbitrary: fc.nat() },
          { weight: 3, arbitrary: fc.tuple(fc.nat(4000), fc.nat(24)).map(([k, off]) => k * stride + off) },
        );
  const count = stride === undefined ? fc.integer({ min: 1, max: 64 }) : fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 4 }).map((k) => k * stride));
  const rangeStart = stride === undefined ? fc.nat() : fc.oneof(fc.nat(), fc.nat(4000).map((k) => k * stride));
  const rangeCount = stride === undefined ? fc.integer({ min: 1, max: 2048 }) : fc.oneof(fc.integer({ min: 1, max: 2048 }), fc.integer({ min: 1, max: 8 }).map((k) => k * stride));
  return fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('set' as const), at: position, value: fc.integer({ min: 0, max: 255 }) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('flip' as const), at: position, bit: fc.integer({ min: 0, max: 7 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('insert' as const), at: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), at: position, count }) },
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant('length' as const),
        at: position,
        width: fc.constantFrom(1 as const, 2 as const, 3 as const, 4 as const),
        value: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...NASTY_VALUES) }, { weight: 1, arbitrary: fc.nat() }),
        littleEndian: fc.boolean(),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant('duplicate' as const), from: rangeStart, count: rangeCount, to: rangeStart, times: fc.integer({ min: 1, max: 8 }) }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant('splice' as const), seed: fc.nat(Math.max(0, seedCount - 1)), from: rangeStart, count: rangeCount, to: rangeStart }),
    },
  );
};

/** Applies the mutations in order; positions wrap modulo the current length. */
export function applyMutations(seed: Buffer, mutations: readonly Mutation[], seeds: readonly Buffer[] = []): Buffer {
  let b = Buffer.from(seed);
  const pos = (at: number, extra = 0): number => (b.length + extra === 0 ? 0 : at % (b.length + extra));
  for (const m of mutations) {
    switch (m.kind) {
      case 'set':
        if (b.length > 0) b[pos(m.at)] = m.value;
        break;
      case 'flip':
        if (b.length > 0) b[pos(m.at)] = (b[pos(m.at)] as number) ^ (1 << m.bit);
        break;
      case 'insert': {
        const at = pos(m.at, 1);
        b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
        break;
      }
      case 'delete': {
        if (b.length === 0) break;
        const at = pos(m.at);
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.count)]);
        break;
      }
      case 'length': {
        if (b.length < m.width) break;
        const at = m.at % (b.length - m.width + 1);
        const v = m.width === 4 ? m.value >>> 0 : m.value % 2 ** (8 * m.width);
        if (m.littleEndian) b.writeUIntLE(v, at, m.width);
        else b.writeUIntBE(v, at, m.width);
        break;
      }
      case 'truncate':
        b = b.subarray(0, pos(m.at, 1));
        break;
      case 'duplicate': {
        if (b.length === 0) break;
        const from = pos(m.from);
        const piece = b.subarray(from, from + m.count);
        const to = pos(m.to, 1);
        b = Buffer.concat([b.subarray(0, to), ...Array.from({ length: m.times }, () => piece), b.subarray(to)]);
        break;
      }
      case 'splice': {
        const other = seeds[m.seed];
        if (other === undefined || other.length === 0) break;
        const from = m.from % other.length;
        const to = pos(m.to, 1);
        b = Buffer.concat([b.subarray(0, to), other.subarray(from, from + m.count), b.subarray(to)]);
        break;
      }
    }
    if (b.length > MAX_INPUT) b = b.subarray(0, MAX_INPUT);
  }
  return b;
}

/**
 * Inputs for one target: mostly mutated seeds (often a single mutation, which keeps the
 * rest of the structure intact; up to 8; a few unmutated, so the valid path is always
 * exercised), some random bytes.
 */
export function inputArbitrary(seeds: readonly Buffer[], options: MutationOptions = {}): fc.Arbitrary<Buffer> {
  if (seeds.length === 0) throw new Error('no seeds');
  const one = mutationArb(seeds.length, options.stride);
  const mutations = fc.oneof(
    { weight: 2, arbitrary: fc.array(one, { minLength: 1, maxLength: 1 }) },
    { weight: 3, arbitrary: fc.array(one, { minLength: 0, maxLength: 8 }) },
  );
  const { fixup } = options;
  const mutated = fc
    .tuple(fc.nat(seeds.length - 1), mutations, fc.boolean())
    .map(([i, mutations, fix]) => {
      const b = applyMutations(seeds[i]!, mutations, seeds);
      return fix && fixup !== undefined ? fixup(b) : b;
    });
  const random = fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a));
  return fc.oneof({ weight: 9, arbitrary: mutated }, { weight: 1, arbitrary: random });
}

/**
 * Rewrites the CRC_32 of every PSI section that starts and ends inside one packet on the
 * PAT PID or a PMT PID the PAT names (ISO/IEC 13818-1 2.4.4), so mutated tables are parsed
 * instead of dropped at the CRC check. Works on a copy; packets out of alignment are left alone.
 */
export function fixTsPsiCrc(input: Buffer): Buffer {
  const b = Buffer.from(input);
  const psiPids = new Set([0]);
  for (let p = 0; p + 188 <= b.length; p += 188) {
    if (b[p] !== 0x47) continue;
    const pid = ((b[p + 1]! & 0x1f) << 8) | b[p + 2]!;
    const pusi = (b[p + 1]! & 0x40) !== 0;
    if (!pusi || !psiPids.has(pid)) continue;
    const afc = (b[p + 3]! >> 4) & 0x03;
    if ((afc & 0x01) === 0) continue;
    let at = p + 4 + ((afc & 0x02) !== 0 ? 1 + b[p + 4]! : 0);
    if (at >= p + 188) continue;
    at += 1 + b[at]!; // pointer_field
    if (at + 3 > p + 188) continue;
    const total = 3 + (b.readUInt16BE(at + 1) & 0x0fff);
    if (total < 12 || at + total > p + 188) continue;
    if (pid === 0 && b[at] === 0x00) {
      for (let e = at + 8; e + 4 <= at + total - 4; e += 4) if (b.readUInt16BE(e) !== 0) psiPids.add(b.readUInt16BE(e + 2) & 0x1fff);
    }
    b.writeUInt32BE(crc32Mpeg2(b, at, at + total - 4), at + total - 4);
  }
  return b;
}
