/**
 * Program Specific Information for the demuxer (ISO/IEC 13818-1, 2.4.4): PSI sections
 * reassembled from packet payloads, CRC-checked, and the two tables it needs, the
 * Program Association Table (2.4.4.3) and the TS Program Map Table (2.4.4.8).
 */
import { crc32Mpeg2 } from './crc32.js';

/** 2.4.4.11: section_length of a PAT or PMT is at most 1021, so a section is at most 1024 bytes. */
const MAX_SECTION = 1024;

export const PAT_PID = 0x0000;
const TABLE_PAT = 0x00;
const TABLE_PMT = 0x02;

/**
 * Reassembles sections on one PID. With PUSI set, the payload starts with pointer_field
 * (2.4.4.2): the bytes it skips finish the previous section, and after a section ends
 * another may follow in the same packet until 0xFF stuffing.
 */
export class SectionAssembler {
  private buf = Buffer.alloc(MAX_SECTION);
  private have = 0;
  /** The section being assembled, or -1 when none (total length once the header is in). */
  private need = -1;

  constructor(private readonly onSection: (section: Buffer) => void) {}

  push(payload: Buffer, pusi: boolean): void {
    let pos = 0;
    if (pusi) {
      const pointer = payload[0];
      if (pointer === undefined) return;
      pos = 1;
      const tailEnd = Math.min(payload.length, pos + pointer);
      if (this.need !== -1) this.append(payload.subarray(pos, tailEnd));
      this.reset();
      pos = tailEnd;
      while (pos < payload.length && payload[pos] !== 0xff) {
        this.need = 0;
        pos += this.append(payload.subarray(pos));
        if (this.need !== -1) return; // continues in the next packet
      }
    } else if (this.need !== -1) {
      this.append(payload);
    }
  }

  reset(): void {
    this.have = 0;
    this.need = -1;
  }

  /** Copies what belongs to the current section; returns the bytes consumed. */
  private append(data: Buffer): number {
    let used = 0;
    if (this.have < 3) {
      const n = Math.min(3 - this.have, data.length);
      data.copy(this.buf, this.have, 0, n);
      this.have += n;
      used = n;
      if (this.have < 3) return used;
      const total = 3 + (this.buf.readUInt16BE(1) & 0x0fff);
      if (total > MAX_SECTION) {
        this.reset();
        return data.length;
      }
      this.need = total;
    }
    const n = Math.min(this.need - this.have, data.length - used);
    data.copy(this.buf, this.have, used, used + n);
    this.have += n;
    used += n;
    if (this.have === this.need) {
      const section = this.buf.subarray(0, this.have);
      this.reset();
      this.onSection(section);
    }
    return used;
  }
}

/**
 * Checks the long-form section header shared by PAT and PMT: the table id, the syntax
 * indicator, current_next_indicator (a "next" table is not in force yet) and the CRC.
 */
function checkLongSection(s: Buffer, tableId: number): boolean {
  if (s.length < 12 || s[0] !== tableId) return false;
  if (((s[1] as number) & 0x80) === 0) return false;
  if (((s[5] as number) & 0x01) === 0) return false;
  return crc32Mpeg2(s) === 0;
}

/** The PID of the first program's PMT (program_number 0 is the network PID). */
export function parsePat(s: Buffer): number | undefined {
  if (!checkLongSection(s, TABLE_PAT)) return undefined;
  const end = s.length - 4;
  for (let pos = 8; pos + 4 <= end; pos += 4) {
    if (s.readUInt16BE(pos) !== 0) return s.readUInt16BE(pos + 2) & 0x1fff;
  }
  return undefined;
}

export interface PmtStream {
  streamType: number;
  pid: number;
}

export function parsePmt(s: Buffer): PmtStream[] | undefined {
  if (!checkLongSection(s, TABLE_PMT)) return undefined;
  const end = s.length - 4;
  const programInfoLength = s.readUInt16BE(10) & 0x0fff;
  const streams: PmtStream[] = [];
  let pos = 12 + programInfoLength;
  while (pos + 5 <= end) {
    const streamType = s[pos] as number;
    const pid = s.readUInt16BE(pos + 1) & 0x1fff;
    const esInfoLength = s.readUInt16BE(pos + 3) & 0x0fff;
    streams.push({ streamType, pid });
    pos += 5 + esInfoLength;
  }
  return streams;
}
