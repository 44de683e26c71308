/**
 * NAL unit plumbing shared by H.264 and HEVC: the Annex B byte stream format (ITU-T
 * H.264 Annex B, H.265 Annex B) that MPEG-TS carries, and an RBSP bit reader for the few
 * parameter-set fields the decoder configuration records need.
 */

const START_CODE = Buffer.from([0, 0, 1]);

/**
 * Splits an Annex B access unit into NAL units (views into `data`, no copies). Both
 * 3-byte and 4-byte start codes work: the extra zero of a 4-byte one (zero_byte) is
 * trailing zero data of the unit before, which B.2 allows and which is trimmed. Bytes
 * before the first start code belong to no NAL unit and are ignored.
 */
export function splitAnnexB(data: Buffer): Buffer[] {
  const units: Buffer[] = [];
  let at = data.indexOf(START_CODE);
  while (at >= 0) {
    const start = at + 3;
    const next = data.indexOf(START_CODE, start);
    let end = next < 0 ? data.length : next;
    while (end > start && data[end - 1] === 0) end -= 1;
    if (end > start) units.push(data.subarray(start, end));
    at = next;
  }
  return units;
}

/** Thrown by RbspReader past the end of the unit; callers treat the unit as unusable. */
export class RbspEnd extends Error {}

/**
 * Reads RBSP bits from a NAL unit, skipping emulation_prevention_three_byte (H.264
 * 7.4.1, H.265 7.4.2: a 0x03 after two zero bytes) as it goes.
 */
export class RbspReader {
  private pos: number;
  private zeros = 0;
  private cur = 0;
  private bitsLeft = 0;

  constructor(private readonly buf: Buffer, start: number) {
    this.pos = start;
  }

  private nextByte(): number {
    if (this.pos >= this.buf.length) throw new RbspEnd();
    let b = this.buf[this.pos++] as number;
    if (this.zeros >= 2 && b === 0x03) {
      if (this.pos >= this.buf.length) throw new RbspEnd();
      b = this.buf[this.pos++] as number;
      this.zeros = 0;
    }
    this.zeros = b === 0 ? this.zeros + 1 : 0;
    return b;
  }

  u1(): number {
    if (this.bitsLeft === 0) {
      this.cur = this.nextByte();
      this.bitsLeft = 8;
    }
    this.bitsLeft -= 1;
    return (this.cur >> this.bitsLeft) & 1;
  }

  /** Up to 32 bits (callers read wider fields in pieces). */
  u(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 2 + this.u1();
    return v;
  }

  /** ue(v), H.264 9.1 / H.265 9.2. More than 31 leading zeros is no valid 32-bit code. */
  ue(): number {
    let zeros = 0;
    while (this.u1() === 0) {
      zeros += 1;
      if (zeros > 31) throw new RbspEnd();
    }
    return 2 ** zeros - 1 + this.u(zeros);
  }
}
