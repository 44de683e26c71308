/**
 * Message payloads with free bytes in front for their RTMP chunk header.
 *
 * A message that fits in one chunk goes out as header + payload. When the header can be
 * written into bytes reserved in front of the payload, that is one Buffer made without
 * copying the payload. Fan-out of a 1080p stream moves frames of tens of kilobytes; a
 * copy per message doubled the external memory a GOP cache keeps alive, and that memory
 * is what makes V8 run its full collections every few seconds.
 *
 * Only buffers made here have headroom, and it is written once: the first wire form made
 * of a payload claims it. Another message sharing the payload (a failover re-stamp, or a
 * second encoding with another stream id) gets a copy, so no view's bytes ever change.
 */

/** Basic header (1 byte for chunk streams < 64) + type 0 header (11) + extended timestamp (4). */
export const WIRE_HEADROOM = 16;

const unclaimed = new WeakSet<ArrayBufferLike>();

/** A Buffer of `length` bytes (contents undefined) with WIRE_HEADROOM writable bytes in front. */
export function allocWithHeadroom(length: number): Buffer {
  // allocUnsafeSlow: never a slice of the shared pool, so the bytes in front are ours alone.
  const whole = Buffer.allocUnsafeSlow(WIRE_HEADROOM + length);
  unclaimed.add(whole.buffer);
  return whole.subarray(WIRE_HEADROOM);
}

/**
 * The `headerLength` bytes in front of `payload` plus the payload, as one Buffer, if the
 * payload was made by allocWithHeadroom (whole, not a slice of it) and nobody claimed
 * them before; the caller writes its header into the first bytes. Undefined otherwise.
 */
export function claimHeadroom(payload: Buffer, headerLength: number): Buffer | undefined {
  if (headerLength > WIRE_HEADROOM || payload.byteOffset !== WIRE_HEADROOM) return undefined;
  if (WIRE_HEADROOM + payload.length !== payload.buffer.byteLength) return undefined;
  if (!unclaimed.delete(payload.buffer)) return undefined;
  return Buffer.from(payload.buffer, WIRE_HEADROOM - headerLength, headerLength + payload.length);
}
