/**
 * The transport packet header and adaptation field (ISO/IEC 13818-1, 2.4.3.2 - 2.4.3.5).
 * Only what the demuxer needs: PID, PUSI, continuity, the discontinuity flag, payload.
 */

export interface TsPacketHeader {
  pid: number;
  /** payload_unit_start_indicator: a PES or PSI section starts in this packet. */
  pusi: boolean;
  continuityCounter: number;
  /** adaptation_field_control has the payload bit (01 or 11). */
  hasPayload: boolean;
  /** discontinuity_indicator (2.4.3.5): the continuity counter may jump here. */
  discontinuity: boolean;
  /** Offset of the payload inside the 188-byte packet. */
  payloadOffset: number;
}

export const NULL_PID = 0x1fff;

/**
 * Returns undefined for packets that must be ignored: transport_error_indicator set (a
 * demodulator or the link flagged it as damaged), scrambled payloads, the reserved
 * adaptation_field_control value 00, and adaptation fields longer than the packet.
 */
export function parseTsPacketHeader(p: Buffer): TsPacketHeader | undefined {
  const b1 = p[1] as number;
  if ((b1 & 0x80) !== 0) return undefined;
  const b3 = p[3] as number;
  if ((b3 & 0xc0) !== 0) return undefined; // transport_scrambling_control
  const afc = (b3 >> 4) & 0x03;
  if (afc === 0) return undefined;
  let payloadOffset = 4;
  let discontinuity = false;
  if ((afc & 0x02) !== 0) {
    const afLength = p[4] as number;
    // 2.4.3.5: 0..182 with a payload, exactly 183 without; be lenient with the latter.
    if (afLength > (afc === 3 ? 182 : 183)) return undefined;
    if (afLength > 0) discontinuity = ((p[5] as number) & 0x80) !== 0;
    payloadOffset = 5 + afLength;
  }
  return {
    pid: ((b1 & 0x1f) << 8) | (p[2] as number),
    pusi: (b1 & 0x40) !== 0,
    continuityCounter: b3 & 0x0f,
    hasPayload: (afc & 0x01) !== 0,
    discontinuity,
    payloadOffset,
  };
}

/**
 * Continuity per PID (2.4.3.3): the counter increments by one per packet with a payload;
 * one duplicate (same counter) may follow a packet and is to be ignored.
 */
export type ContinuityVerdict = 'ok' | 'duplicate' | 'gap';

export class ContinuityTracker {
  private readonly last = new Map<number, number>();

  check(h: TsPacketHeader): ContinuityVerdict {
    if (!h.hasPayload) return 'ok'; // the counter does not advance without a payload
    const prev = this.last.get(h.pid);
    this.last.set(h.pid, h.continuityCounter);
    if (prev === undefined || h.discontinuity) return 'ok';
    if (h.continuityCounter === prev) return 'duplicate';
    return h.continuityCounter === ((prev + 1) & 0x0f) ? 'ok' : 'gap';
  }

  forget(pid: number): void {
    this.last.delete(pid);
  }
}
