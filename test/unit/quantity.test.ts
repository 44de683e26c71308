import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseQuantity } from '../../src/config/quantity.js';
import { FlowrelayError } from '../../src/lib/errors.js';

describe('parseQuantity', () => {
  it.each([
    [0, 0],
    [1935, 1935],
    ['0', 0],
    ['4096', 4096],
    ['500k', 500_000],
    ['500K', 500_000],
    ['6M', 6_000_000],
    ['2G', 2_000_000_000],
    ['1Ki', 1024],
    ['8Mi', 8 * 1024 * 1024],
    ['1Gi', 1024 ** 3],
    ['1.5M', 1_500_000],
    ['1.1M', 1_100_000],
    ['0.5Ki', 512],
    ['2.0', 2],
    [' 6M ', 6_000_000],
    ['6 M', 6_000_000],
  ] as const)('%j -> %d', (input, expected) => {
    expect(parseQuantity(input, 'bytes')).toBe(expected);
  });

  it.each([
    '',
    'abc',
    '6m',
    '6g',
    '6ki',
    '6MB',
    '6Mbps',
    '-1',
    '1e6',
    '0x10',
    '1.',
    '.5M',
    '1.5',
    '1.0001k',
    '6 M M',
    '99999999999G',
  ])('rejects %j', (input) => {
    expect(() => parseQuantity(input, 'bits')).toThrow(FlowrelayError);
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 60])('rejects the number %d', (input) => {
    expect(() => parseQuantity(input, 'bytes')).toThrow(/whole, non-negative number of bytes/);
  });

  it('names the kind and the accepted suffixes in its error', () => {
    let caught: unknown;
    try {
      parseQuantity('6 megabits', 'bits');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(FlowrelayError);
    expect((caught as FlowrelayError).code).toBe('CONFIG_BAD_QUANTITY');
    expect((caught as Error).message).toMatch(/"6 megabits" is not a valid number of bits/);
    expect((caught as Error).message).toMatch(/Ki \(1024\)/);
  });

  it('is exact for every integer with every suffix', () => {
    const suffixes: [string, number][] = [
      ['', 1],
      ['k', 1e3],
      ['K', 1e3],
      ['M', 1e6],
      ['G', 1e9],
      ['Ki', 1024],
      ['Mi', 2 ** 20],
      ['Gi', 2 ** 30],
    ];
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1_000_000 }), fc.constantFrom(...suffixes), (n, [suffix, mult]) => {
        expect(parseQuantity(`${n}${suffix}`, 'bytes')).toBe(n * mult);
      }),
    );
  });

  it('accepts one decimal digit of a decimal suffix exactly', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 9 }), (whole, tenth) => {
        expect(parseQuantity(`${whole}.${tenth}M`, 'bits')).toBe(whole * 1_000_000 + tenth * 100_000);
      }),
    );
  });
});
