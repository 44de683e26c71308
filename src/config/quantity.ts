import { FlowrelayError } from '../lib/errors.js';

/** What a quantity counts; only used to word errors ("8Mi bytes" vs "6M bits/s"). */
export type QuantityKind = 'bytes' | 'bits';

// Lowercase "m" and "g" are deliberately absent: "m" reads as milli to some people and
// mega to others, and a silent factor of 10^9 in a bitrate cap is worse than an error.
const MULTIPLIERS: Readonly<Record<string, bigint>> = {
  '': 1n,
  k: 1_000n,
  K: 1_000n,
  M: 1_000_000n,
  G: 1_000_000_000n,
  Ki: 1n << 10n,
  Mi: 1n << 20n,
  Gi: 1n << 30n,
};

const QUANTITY_RE = /^(\d+)(?:\.(\d+))?\s*(Ki|Mi|Gi|k|K|M|G)?$/;

const HINT = 'use an integer, optionally with a suffix k/K (1e3), M (1e6), G (1e9), Ki (1024), Mi (2^20) or Gi (2^30), e.g. 500k, 6M, 8Mi, 1.5M';

/**
 * Parses a size or rate such as `6M`, `500k`, `8Mi` or `1.5M` into a whole number.
 * Arithmetic is done in BigInt so `1.1M` is exactly 1100000 rather than a float that is
 * off by a rounding error; a result that is not a whole number is rejected because
 * neither bytes nor bits can be split.
 */
export function parseQuantity(input: string | number, kind: QuantityKind): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) {
      throw quantityError(`${input} is not a whole, non-negative number of ${kind}; ${HINT}`);
    }
    return input;
  }
  const m = QUANTITY_RE.exec(input.trim());
  if (!m) throw quantityError(`${JSON.stringify(input)} is not a valid number of ${kind}; ${HINT}`);
  const [, whole = '', frac = '', suffix = ''] = m;
  const multiplier = MULTIPLIERS[suffix] ?? 1n;
  const scale = 10n ** BigInt(frac.length);
  const scaled = BigInt(whole + frac) * multiplier;
  if (scaled % scale !== 0n) {
    throw quantityError(`${JSON.stringify(input)} is not a whole number of ${kind}`);
  }
  const value = scaled / scale;
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw quantityError(`${JSON.stringify(input)} is too large`);
  }
  return Number(value);
}

function quantityError(message: string): FlowrelayError {
  return new FlowrelayError('CONFIG_BAD_QUANTITY', message);
}
