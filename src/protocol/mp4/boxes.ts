/**
 * A byte writer for ISO BMFF boxes (ISO/IEC 14496-12, 4.2): big-endian fields, and boxes
 * whose 32-bit size is patched in when they are closed, so no box size is computed by
 * hand. It grows by doubling; callers that know the size up front pass it and never grow.
 */

const MAX_U32 = 0xffffffff;
const TWO_32 = 2 ** 32;

export class BoxWriter {
  private buf: Buffer;
  private pos = 0;
  /** Start offsets of the boxes opened and not yet closed. */
  private readonly open: number[] = [];

  constructor(capacity = 512) {
    this.buf = Buffer.alloc(capacity);
  }

  get position(): number {
    return this.pos;
  }

  /**
   * Reserves n bytes and returns where they start. Callers must take the offset before
   * touching `buf`, which this may replace.
   */
  private room(n: number): number {
    const at = this.pos;
    if (at + n > this.buf.length) {
      const next = Buffer.alloc(Math.max(this.buf.length * 2, at + n));
      this.buf.copy(next, 0, 0, at);
      this.buf = next;
    }
    this.pos = at + n;
    return at;
  }

  u8(v: number): this {
    const at = this.room(1);
    this.buf[at] = v & 0xff;
    return this;
  }

  u16(v: number): this {
    const at = this.room(2);
    this.buf.writeUInt16BE(v & 0xffff, at);
    return this;
  }

  u24(v: number): this {
    const at = this.room(3);
    this.buf.writeUIntBE(v & 0xffffff, at, 3);
    return this;
  }

  u32(v: number): this {
    const at = this.room(4);
    this.buf.writeUInt32BE(v >>> 0, at);
    return this;
  }

  i32(v: number): this {
    const at = this.room(4);
    this.buf.writeInt32BE(v | 0, at);
    return this;
  }

  /** Exact for the 53 bits a JavaScript number holds, which is all a media time needs. */
  u64(v: number): this {
    const at = this.room(8);
    this.buf.writeUInt32BE(Math.floor(v / TWO_32) >>> 0, at);
    this.buf.writeUInt32BE(v % TWO_32 >>> 0, at + 4);
    return this;
  }

  zeros(n: number): this {
    this.room(n); // Buffer.alloc zero-fills, and the buffer is never reused.
    return this;
  }

  bytes(b: Buffer): this {
    const at = this.room(b.length);
    b.copy(this.buf, at);
    return this;
  }

  /** Four Latin-1 characters: a box type, brand or handler type. */
  fourcc(s: string): this {
    const at = this.room(4);
    this.buf.write(s, at, 4, 'latin1');
    return this;
  }

  /** Opens a box; its size is written by the matching end(). */
  box(type: string): this {
    this.open.push(this.pos);
    return this.u32(0).fourcc(type);
  }

  /** Opens a FullBox: a box with version (u8) and flags (u24). */
  fullBox(type: string, version: number, flags: number): this {
    return this.box(type).u8(version).u24(flags);
  }

  end(): this {
    const start = this.open.pop();
    if (start === undefined) throw new Error('BoxWriter.end() without an open box');
    const size = this.pos - start;
    if (size > MAX_U32) throw new RangeError(`box of ${size} bytes needs a 64-bit size`);
    this.buf.writeUInt32BE(size, start);
    return this;
  }

  /** Overwrites an already written u32, for fields that depend on what follows them. */
  patchU32(at: number, v: number): void {
    this.buf.writeUInt32BE(v >>> 0, at);
  }

  finish(): Buffer {
    if (this.open.length > 0) throw new Error(`BoxWriter.finish() with ${this.open.length} open box(es)`);
    return this.buf.subarray(0, this.pos);
  }
}
