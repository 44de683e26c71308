/**
 * SRT live mode sends MPEG-TS as messages of 7 transport packets (1316 bytes: the
 * largest multiple of 188 that fits a 1500-byte MTU with IP/UDP/SRT headers), which is
 * what srt-live-transmit, ffmpeg and VLC send and expect.
 */
import { TS_PACKET_SIZE, TS_PACKETS_PER_SRT_MESSAGE } from './types.js';

export const SRT_TS_MESSAGE_SIZE = TS_PACKET_SIZE * TS_PACKETS_PER_SRT_MESSAGE;

/**
 * Splits `carry` + `ts` into whole 1316-byte messages; what is left (fewer than 7
 * packets) comes back as the new carry, a copy so it does not pin a large input buffer.
 * Messages are views of the input when there is no carry: the caller must not modify
 * `ts` afterwards. A live sender that wants bounded latency may send a non-empty carry
 * on its own after a quiet period; SRT accepts shorter messages.
 */
export function packForSrt(ts: Buffer, carry: Buffer): { messages: Buffer[]; carry: Buffer } {
  const all = carry.length === 0 ? ts : ts.length === 0 ? carry : Buffer.concat([carry, ts], carry.length + ts.length);
  const whole = Math.floor(all.length / SRT_TS_MESSAGE_SIZE);
  const messages: Buffer[] = new Array<Buffer>(whole);
  for (let i = 0; i < whole; i++) messages[i] = all.subarray(i * SRT_TS_MESSAGE_SIZE, (i + 1) * SRT_TS_MESSAGE_SIZE);
  const rest = all.subarray(whole * SRT_TS_MESSAGE_SIZE);
  return { messages, carry: rest.length === 0 ? Buffer.alloc(0) : Buffer.from(rest) };
}
