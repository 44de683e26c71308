/**
 * Program Specific Information for the muxer: one PAT and one PMT, each a single TS
 * packet (ISO/IEC 13818-1 2.4.4). A program with a handful of streams fits one packet
 * with room to spare, so sections are never split.
 */
import { crc32Mpeg2 } from './crc32.js';
import { TS_PACKET_SIZE } from './types.js';

const PAT_PID = 0x0000;
const TABLE_ID_PAT = 0x00;
const TABLE_ID_PMT = 0x02;

export interface PmtStream {
  /** stream_type, table 2-34 (0x1B H.264, 0x24 HEVC, 0x0F ADTS AAC). */
  streamType: number;
  pid: number;
}

export interface ProgramSpec {
  transportStreamId: number;
  programNumber: number;
  pmtPid: number;
  pcrPid: number;
  /** version_number, 5 bits: bumped whenever the PMT's content changes (2.4.4.9). */
  version: number;
  streams: readonly PmtStream[];
}

/**
 * A PSI packet: PUSI set, pointer_field 0 (the section starts right after it, 2.4.4.2),
 * continuity counter 0 (the muxer patches byte 3 on every send), then 0xFF stuffing,
 * which 2.4.4 allows after the last section in a packet.
 */
function psiPacket(pid: number, section: Buffer): Buffer {
  if (section.length > TS_PACKET_SIZE - 5) throw new RangeError('PSI section does not fit one TS packet');
  const p = Buffer.alloc(TS_PACKET_SIZE, 0xff);
  p[0] = 0x47;
  p[1] = 0x40 | ((pid >> 8) & 0x1f);
  p[2] = pid & 0xff;
  p[3] = 0x10; // payload only
  p[4] = 0x00; // pointer_field
  section.copy(p, 5);
  return p;
}

/**
 * Fills in section_length and the CRC of a long-form section (2.4.4.3 / 2.4.4.8):
 * section_length counts the bytes after itself, CRC included.
 */
function finishSection(s: Buffer): Buffer {
  const sectionLength = s.length - 3;
  s[1] = 0xb0 | ((sectionLength >> 8) & 0x0f); // section_syntax_indicator 1, '0', reserved '11'
  s[2] = sectionLength & 0xff;
  s.writeUInt32BE(crc32Mpeg2(s, 0, s.length - 4), s.length - 4);
  return s;
}

/** PAT (2.4.4.3) with the one program. */
export function patPacket(spec: Pick<ProgramSpec, 'transportStreamId' | 'programNumber' | 'pmtPid'>): Buffer {
  const s = Buffer.alloc(8 + 4 + 4);
  s[0] = TABLE_ID_PAT;
  s.writeUInt16BE(spec.transportStreamId, 3);
  s[5] = 0xc1; // reserved '11', version 0, current_next_indicator 1
  s[6] = 0; // section_number
  s[7] = 0; // last_section_number
  s.writeUInt16BE(spec.programNumber, 8);
  s.writeUInt16BE(0xe000 | spec.pmtPid, 10);
  return psiPacket(PAT_PID, finishSection(s));
}

/** PMT (2.4.4.8) without descriptors: stream_type alone identifies each stream we carry. */
export function pmtPacket(spec: ProgramSpec): Buffer {
  const s = Buffer.alloc(12 + 5 * spec.streams.length + 4);
  s[0] = TABLE_ID_PMT;
  s.writeUInt16BE(spec.programNumber, 3);
  s[5] = 0xc1 | ((spec.version & 0x1f) << 1);
  s[6] = 0;
  s[7] = 0;
  s.writeUInt16BE(0xe000 | spec.pcrPid, 8);
  s.writeUInt16BE(0xf000, 10); // program_info_length 0
  let at = 12;
  for (const es of spec.streams) {
    s[at] = es.streamType;
    s.writeUInt16BE(0xe000 | es.pid, at + 1);
    s.writeUInt16BE(0xf000, at + 3); // ES_info_length 0
    at += 5;
  }
  return psiPacket(spec.pmtPid, finishSection(s));
}
