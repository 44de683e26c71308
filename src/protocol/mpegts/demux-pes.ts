/**
 * PES reassembly for one elementary PID (ISO/IEC 13818-1, 2.4.3.6 - 2.4.3.7).
 *
 * A unit (what this hands on) is one PES payload with the timestamps of its header. In
 * "access unit" mode (video) a PES without a PTS continues the unit in progress: muxers
 * that split a large frame over several PES packets stamp only the first, and cutting a
 * frame between PES packets would cut NAL units. Units then complete at the next PUSI
 * whose PES header carries a PTS (with PES_packet_length 0, common for video, nothing
 * else can end them). Otherwise (audio) a unit completes when PES_packet_length is
 * reached, or at the next PUSI.
 */

export interface PesUnit {
  /** Raw 33-bit PTS/DTS (90 kHz); dts equals pts when the header has no DTS. */
  pts: number | undefined;
  dts: number | undefined;
  /**
   * The elementary stream bytes. Only valid during the callback: the buffer is reused
   * for the next unit, so keep a copy of anything retained.
   */
  data: Buffer;
}

/** 2.4.3.7: 9 fixed bytes, then PES_header_data_length (a byte, so at most 255) more. */
const MAX_HEADER = 9 + 255;
const INITIAL_CAPACITY = 64 * 1024;

/** stream_id values whose PES packets have no optional header (2.4.3.7, Table 2-21 notes). */
function hasOptionalHeader(streamId: number): boolean {
  switch (streamId) {
    case 0xbc: case 0xbe: case 0xbf: case 0xf0: case 0xf1: case 0xf2: case 0xf8: case 0xff:
      return false;
    default:
      return true;
  }
}

/** PTS/DTS fields (2.4.3.7): 4-bit prefix, 3 + 15 + 15 value bits separated by marker bits. */
function readTimestamp(b: Buffer, at: number): number {
  const hi = ((b[at] as number) >> 1) & 0x07;
  const mid = ((b[at + 1] as number) << 7) | ((b[at + 2] as number) >> 1);
  const lo = ((b[at + 3] as number) << 7) | ((b[at + 4] as number) >> 1);
  return hi * 2 ** 30 + mid * 2 ** 15 + lo;
}

export class PesAssembler {
  private readonly header = Buffer.alloc(MAX_HEADER);
  private headerHave = 0;
  /** Header bytes still wanted; 0 when not reading a header. */
  private headerNeed = 0;

  private body: Buffer = Buffer.alloc(0);
  private bodyLen = 0;
  private active = false;
  private pts: number | undefined;
  private dts: number | undefined;
  /** Payload bytes left in the current PES per PES_packet_length; -1 when unbounded. */
  private remaining = -1;

  constructor(
    private readonly maxBytes: number,
    private readonly accessUnits: boolean,
    private readonly onUnit: (unit: PesUnit) => void,
    /** A unit was thrown away: malformed header, over maxBytes, or abort(). */
    private readonly onDrop: () => void,
  ) {}

  push(payload: Buffer, pusi: boolean): void {
    let data = payload;
    if (pusi) {
      if (this.headerNeed > 0) this.drop(); // the previous header never finished
      this.headerHave = 0;
      this.headerNeed = 9;
    }
    if (this.headerNeed > 0) {
      const used = this.readHeader(data);
      if (used < 0 || this.headerNeed > 0) return;
      data = data.subarray(used);
    }
    if (!this.active) return; // joined mid-PES, or after a drop: wait for the next start
    if (this.remaining >= 0) {
      if (data.length > this.remaining) data = data.subarray(0, this.remaining);
      this.remaining -= data.length;
    }
    this.append(data);
    if (this.remaining === 0 && !this.accessUnits) this.complete();
  }

  /** End of stream: hand on the unit in progress. */
  flush(): void {
    if (this.headerNeed > 0) this.drop();
    if (this.active) this.complete();
  }

  /** A continuity gap: what is in progress is missing bytes. */
  abort(): void {
    if (this.active || this.headerNeed > 0) this.drop();
  }

  /** Returns bytes of `data` consumed, or -1 if the header is malformed (unit dropped). */
  private readHeader(data: Buffer): number {
    let used = 0;
    if (this.headerHave < 9) {
      used = Math.min(9 - this.headerHave, data.length);
      data.copy(this.header, this.headerHave, 0, used);
      this.headerHave += used;
      if (this.headerHave < 9) return used;
      const h = this.header;
      if (h[0] !== 0 || h[1] !== 0 || h[2] !== 1 || !hasOptionalHeader(h[3] as number) || ((h[6] as number) & 0xc0) !== 0x80) {
        this.headerNeed = 0;
        this.drop();
        return -1;
      }
      this.headerNeed = 9 + (h[8] as number);
    }
    const n = Math.min(this.headerNeed - this.headerHave, data.length - used);
    data.copy(this.header, this.headerHave, used, used + n);
    this.headerHave += n;
    used += n;
    if (this.headerHave < this.headerNeed) return used;
    this.headerNeed = 0;
    return this.startPes() ? used : -1;
  }

  private startPes(): boolean {
    const h = this.header;
    const headerDataLength = h[8] as number;
    const flags = (h[7] as number) >> 6;
    let pts: number | undefined;
    let dts: number | undefined;
    // PTS_DTS_flags: 10 PTS only, 11 PTS and DTS; 01 is forbidden and read as none.
    if (flags >= 2) {
      if (headerDataLength < (flags === 3 ? 10 : 5)) {
        this.drop();
        return false;
      }
      pts = readTimestamp(h, 9);
      dts = flags === 3 ? readTimestamp(h, 14) : pts;
    }
    const pesLength = h.readUInt16BE(4);
    const remaining = pesLength === 0 ? -1 : pesLength - 3 - headerDataLength;
    if (pesLength !== 0 && remaining < 0) {
      this.drop();
      return false;
    }
    if (this.accessUnits && pts === undefined) {
      // A continuation; without a unit to continue (joined mid-frame, or the start was
      // dropped) its bytes are a fragment and are skipped.
      this.remaining = remaining;
      return true;
    }
    if (this.active) this.complete();
    this.active = true;
    this.bodyLen = 0;
    this.pts = pts;
    this.dts = dts;
    this.remaining = remaining;
    return true;
  }

  private append(data: Buffer): void {
    const need = this.bodyLen + data.length;
    if (need > this.maxBytes) {
      this.drop();
      return;
    }
    if (need > this.body.length) {
      let cap = Math.max(INITIAL_CAPACITY, this.body.length * 2);
      while (cap < need) cap *= 2;
      const grown = Buffer.allocUnsafe(Math.min(cap, this.maxBytes));
      this.body.copy(grown, 0, 0, this.bodyLen);
      this.body = grown;
    }
    data.copy(this.body, this.bodyLen);
    this.bodyLen = need;
  }

  private complete(): void {
    const unit: PesUnit = { pts: this.pts, dts: this.dts, data: this.body.subarray(0, this.bodyLen) };
    this.active = false;
    this.remaining = -1;
    const len = this.bodyLen;
    this.bodyLen = 0;
    this.onUnit(unit);
    // One huge frame should not pin a huge buffer for the rest of the stream.
    if (this.body.length > 4 * INITIAL_CAPACITY && this.body.length > 4 * len) this.body = Buffer.alloc(0);
  }

  private drop(): void {
    this.active = false;
    this.headerNeed = 0;
    this.remaining = -1;
    this.bodyLen = 0;
    this.onDrop();
  }
}
