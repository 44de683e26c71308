/**
 * RBSP bit reader for H.264 / HEVC parameter sets: reads bits straight from a NAL unit,
 * dropping emulation_prevention_three_byte (H.264 7.4.1, H.265 7.4.2: a 0x03 after two
 * zero bytes) on the fly instead of copying the unit.
 */

/**
 * Thrown by RbspReader when the data runs out or an Exp-Golomb code is invalid; callers
 * treat the unit as unusable.
 */
export class RbspEnd extends Error {}

export class RbspReader {
  private pos: number;
  private zeros = 0;
  private cur = 0;
  private bitsLeft = 0;

  /** Reads buf[start, end). */
  constructor(
    private readonly buf: Buffer,
    start = 0,
    private readonly end = buf.length,
  ) {
    this.pos = start;
  }

  private nextByte(): number {
    if (this.pos >= this.end) throw new RbspEnd();
    let b = this.buf[this.pos++] as number;
    if (this.zeros >= 2 && b === 0x03) {
      if (this.pos >= this.end) throw new RbspEnd();
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

  /** se(v), H.264 9.1.1 / H.265 9.2.2. */
  se(): number {
    const k = this.ue();
    return k % 2 === 1 ? (k + 1) / 2 : -(k / 2);
  }
}
