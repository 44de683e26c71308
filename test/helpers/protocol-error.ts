import { ProtocolError } from '../../src/lib/errors.js';

/** Runs fn and returns the ProtocolError it throws; fails on success or any other error. */
export function protocolError(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err;
    throw new Error(`expected a ProtocolError, got ${String(err)}`, { cause: err });
  }
  throw new Error('expected a ProtocolError, but nothing was thrown');
}
