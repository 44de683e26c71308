/**
 * Cuts one PES packet into 188-byte transport packets (ISO/IEC 13818-1 2.4.3.2), with the
 * adaptation field (2.4.3.4) carrying the PCR and random_access_indicator in the first
 * packet and stuffing in the last one: a PES must end exactly at a packet boundary, and
 * adaptation-field stuffing is the only stuffing allowed in packets that carry PES data.
 */
import { TS_PACKET_SIZE } from './types.js';

const HEADER = 4;
const ROOM = TS_PACKET_SIZE - HEADER;
/** adaptation_field_length + flags + the 6-byte PCR field. */
const AF_WITH_PCR = 8;
/** adaptation_field_length + flags. */
const AF_FLAGS_ONLY = 2;
const FLAG_RANDOM_ACCESS = 0x40;
const FLAG_PCR = 0x10;

export interface PesPacketsSpec {
  pid: number;
  /** The PES bytes in order (header first), gathered without concatenating them first. */
  segments: readonly Buffer[];
  /** Sum of the segments' lengths. */
  length: number;
  /** PCR base in 90 kHz units (33 bits); the 27 MHz extension is written as 0. */
  pcrBase?: number;
  /** random_access_indicator: the PES starts a point a decoder can start from. */
  randomAccess: boolean;
}

function firstAdaptationBytes(spec: Pick<PesPacketsSpec, 'pcrBase' | 'randomAccess'>): number {
  if (spec.pcrBase !== undefined) return AF_WITH_PCR;
  return spec.randomAccess ? AF_FLAGS_ONLY : 0;
}

/** How many transport packets writePesPackets will write. */
export function pesPacketCount(spec: Pick<PesPacketsSpec, 'length' | 'pcrBase' | 'randomAccess'>): number {
  const firstRoom = ROOM - firstAdaptationBytes(spec);
  if (spec.length <= firstRoom) return 1;
  return 1 + Math.ceil((spec.length - firstRoom) / ROOM);
}

/**
 * The 6-byte program_clock_reference field (2.4.3.4/2.4.3.5): 33-bit base, 6 reserved
 * bits, 9-bit extension; PCR = base x 300 + extension in 27 MHz ticks.
 */
export function writePcr(buf: Buffer, at: number, base: number, extension = 0): void {
  buf[at] = Math.floor(base / 2 ** 25) & 0xff;
  buf[at + 1] = Math.floor(base / 2 ** 17) & 0xff;
  buf[at + 2] = Math.floor(base / 2 ** 9) & 0xff;
  buf[at + 3] = Math.floor(base / 2) & 0xff;
  buf[at + 4] = ((base % 2) << 7) | 0x7e | ((extension >> 8) & 0x01);
  buf[at + 5] = extension & 0xff;
}

/**
 * An adaptation field of `total` bytes (length byte included). A single byte is the
 * adaptation_field_length 0 form, the only way to stuff exactly one byte (2.4.3.5).
 */
function writeAdaptation(buf: Buffer, at: number, total: number, flags: number, pcrBase: number | undefined): void {
  buf[at] = total - 1;
  if (total === 1) return;
  buf[at + 1] = flags;
  let pos = at + 2;
  if (pcrBase !== undefined) {
    writePcr(buf, pos, pcrBase);
    pos += 6;
  }
  buf.fill(0xff, pos, at + total);
}

function writeHeader(buf: Buffer, at: number, pid: number, unitStart: boolean, control: number, cc: number): void {
  buf[at] = 0x47;
  buf[at + 1] = (unitStart ? 0x40 : 0) | ((pid >> 8) & 0x1f);
  buf[at + 2] = pid & 0xff;
  buf[at + 3] = (control << 4) | (cc & 0x0f);
}

/**
 * Writes pesPacketCount(spec) packets at `at` and returns the next continuity_counter
 * for the PID (2.4.3.3: it counts packets with payload, modulo 16).
 */
export function writePesPackets(out: Buffer, at: number, spec: PesPacketsSpec, cc: number): number {
  const { segments } = spec;
  let segIndex = 0;
  let segOffset = 0;
  let remaining = spec.length;
  let first = true;
  while (first || remaining > 0) {
    const required = first ? firstAdaptationBytes(spec) : 0;
    const take = Math.min(ROOM - required, remaining);
    const adaptation = ROOM - take;
    writeHeader(out, at, spec.pid, first, adaptation > 0 ? 0x3 : 0x1, cc);
    cc = (cc + 1) & 0x0f;
    if (adaptation > 0) {
      const flags = first ? (spec.pcrBase !== undefined ? FLAG_PCR : 0) | (spec.randomAccess ? FLAG_RANDOM_ACCESS : 0) : 0;
      writeAdaptation(out, at + HEADER, adaptation, flags, first ? spec.pcrBase : undefined);
    }
    let dst = at + HEADER + adaptation;
    let need = take;
    while (need > 0) {
      const seg = segments[segIndex];
      if (seg === undefined) throw new RangeError('PES segments are shorter than the declared length');
      const n = Math.min(seg.length - segOffset, need);
      if (n <= 0) {
        segIndex += 1;
        segOffset = 0;
        continue;
      }
      seg.copy(out, dst, segOffset, segOffset + n);
      dst += n;
      need -= n;
      segOffset += n;
    }
    remaining -= take;
    at += TS_PACKET_SIZE;
    first = false;
  }
  return cc;
}

/**
 * A packet with only an adaptation field carrying a PCR (adaptation_field_control '10'),
 * for when the PCR PID has no PES due but the clock must still be sent. Such packets
 * repeat the PID's last continuity_counter instead of advancing it (2.4.3.3), so `cc`
 * is the counter the next payload packet will use.
 */
export function writePcrOnlyPacket(out: Buffer, at: number, pid: number, pcrBase: number, cc: number): void {
  writeHeader(out, at, pid, false, 0x2, (cc - 1) & 0x0f);
  writeAdaptation(out, at + HEADER, ROOM, FLAG_PCR, pcrBase);
}
