import { describe, expect, it } from 'vitest';
import { parseByteRange } from '../../src/api/byte-range.js';

describe('parseByteRange', () => {
  it.each([
    ['absent', undefined, 1000, { kind: 'full' }],
    ['a closed range', 'bytes=0-99', 1000, { kind: 'partial', start: 0, end: 99 }],
    ['a closed range in the middle', 'bytes=100-199', 1000, { kind: 'partial', start: 100, end: 199 }],
    ['an open range', 'bytes=100-', 1000, { kind: 'partial', start: 100, end: 999 }],
    ['a suffix range', 'bytes=-500', 1000, { kind: 'partial', start: 500, end: 999 }],
    ['a suffix larger than the file (the whole file)', 'bytes=-5000', 1000, { kind: 'partial', start: 0, end: 999 }],
    ['a start at the size', 'bytes=1000-', 1000, { kind: 'unsatisfiable' }],
    ['a start beyond the size', 'bytes=2000-3000', 1000, { kind: 'unsatisfiable' }],
    ['an end beyond the size (clamped)', 'bytes=900-5000', 1000, { kind: 'partial', start: 900, end: 999 }],
    ['the last byte', 'bytes=999-999', 1000, { kind: 'partial', start: 999, end: 999 }],
    ['an end before the start (invalid, ignored)', 'bytes=5-2', 1000, { kind: 'full' }],
    ['several ranges', 'bytes=0-1,5-6', 1000, { kind: 'full' }],
    ['another unit', 'items=0-99', 1000, { kind: 'full' }],
    ['no numbers', 'bytes=-', 1000, { kind: 'full' }],
    ['garbage', 'bytes=abc', 1000, { kind: 'full' }],
    ['an empty suffix', 'bytes=-0', 1000, { kind: 'unsatisfiable' }],
    ['a suffix on an empty file', 'bytes=-500', 0, { kind: 'unsatisfiable' }],
    ['any start on an empty file', 'bytes=0-', 0, { kind: 'unsatisfiable' }],
    ['spaces and upper-case unit', ' BYTES = 10 - 19 ', 1000, { kind: 'partial', start: 10, end: 19 }],
  ] as const)('%s: %s of %i bytes', (_what, header, size, expected) => {
    expect(parseByteRange(header, size)).toEqual(expected);
  });
});
