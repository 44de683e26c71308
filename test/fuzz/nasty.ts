/**
 * Hand-built hostile inputs for the corpus (test/fuzz/corpus/<target>/<file>): the cases
 * random mutation reaches rarely or never, each aimed at one cap or one lie. Written to
 * disk by `npm run fuzz -- --write-corpus` (corpus.fuzz.ts); the committed files are what
 * the regression test replays, so a change here only matters once they are rewritten.
 */
import { crc32Mpeg2 } from '../../src/protocol/mpegts/crc32.js';
import { encodeAmf0 } from '../../src/protocol/amf/amf0.js';
import { encodeChunks } from '../../src/protocol/rtmp/chunk-encoder.js';
import { ClientHandshake } from '../../src/protocol/rtmp/client-handshake.js';
import { blockDigest, digestOffset, HANDSHAKE_SIZE, PLAYER_KEY_SHORT, ServerHandshake } from '../../src/protocol/rtmp/handshake.js';
import { MessageType } from '../../src/protocol/rtmp/message-types.js';
import { parseFlv } from '../helpers/flv-file.js';
import type { MediaFiles } from './seeds.js';
import { encodeMuxRecord } from './targets.js';

export interface NastyInput {
  target: string;
  /** File name in the target's corpus folder. */
  file: string;
  /** One line for test/fuzz/corpus/README.md: what it exercises. */
  note: string;
  bytes: Buffer;
}

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const u8 = (...v: number[]): Buffer => Buffer.from(v);
const u16 = (v: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v & 0xffff, 0);
  return b;
};
const u24 = (v: number): Buffer => {
  const b = Buffer.alloc(3);
  b.writeUIntBE(v & 0xffffff, 0, 3);
  return b;
};
const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0, 0);
  return b;
};
const cat = (...parts: Buffer[]): Buffer => Buffer.concat(parts);
const repeat = (b: Buffer, n: number): Buffer => Buffer.concat(Array.from({ length: n }, () => b));

// ---------------------------------------------------------------------------------------
// RTMP chunk headers (spec 5.3.1)
// ---------------------------------------------------------------------------------------

function basic(fmt: number, csid: number): Buffer {
  if (csid < 64) return u8((fmt << 6) | csid);
  if (csid < 320) return u8(fmt << 6, csid - 64);
  const b = u8((fmt << 6) | 1, 0, 0);
  b.writeUInt16LE(csid - 64, 1);
  return b;
}

function type0(csid: number, ts: number, length: number, typeId: number, streamId = 1): Buffer {
  const h = Buffer.alloc(11);
  h.writeUIntBE(ts >= 0xffffff ? 0xffffff : ts, 0, 3);
  h.writeUIntBE(length, 3, 3);
  h[6] = typeId;
  h.writeUInt32LE(streamId >>> 0, 7);
  return cat(basic(0, csid), h, ts >= 0xffffff ? u32(ts) : Buffer.alloc(0));
}

const type1 = (csid: number, delta: number, length: number, typeId: number): Buffer => cat(basic(1, csid), u24(delta), u24(length), u8(typeId));
const type2 = (csid: number, delta: number): Buffer => cat(basic(2, csid), u24(delta));
const type3 = (csid: number): Buffer => basic(3, csid);

const message = (csid: number, typeId: number, payload: Buffer, ts = 0, chunkSize = 128): Buffer => encodeChunks({ csid, typeId, streamId: 1, timestamp: ts, payload }, chunkSize);

/** AMF0 objects nested `depth` deep, as raw bytes (the encoder refuses past 256). */
function nestedObjects(depth: number): Buffer {
  const open = cat(u8(0x03), u16(1), Buffer.from('a'));
  return cat(repeat(open, depth - 1), u8(0x03), u16(0), u8(0x09), repeat(u8(0, 0, 9), depth - 1));
}

function nestedEcmaArrays(depth: number): Buffer {
  const open = cat(u8(0x08), u32(1), u16(1), Buffer.from('a'));
  return cat(repeat(open, depth - 1), u8(0x08), u32(0), u16(0), u8(0x09), repeat(u8(0, 0, 9), depth - 1));
}

/** RBSP bits (H.264 7.2): u(n), ue(v), se(v), then the stop bit and emulation prevention. */
class BitWriter {
  private bits: number[] = [];
  u(n: number, v: number): this {
    for (let i = n - 1; i >= 0; i--) this.bits.push(Math.floor(v / 2 ** i) % 2);
    return this;
  }
  ue(v: number): this {
    const len = Math.floor(Math.log2(v + 1));
    return this.u(len, 0).u(len + 1, v + 1);
  }
  se(v: number): this {
    return this.ue(v <= 0 ? -2 * v : 2 * v - 1);
  }
  nal(header: number): Buffer {
    const bits = [...this.bits, 1];
    while (bits.length % 8 !== 0) bits.push(0);
    const raw: number[] = [];
    for (let i = 0; i < bits.length; i += 8) raw.push(bits.slice(i, i + 8).reduce((a, b) => a * 2 + b, 0));
    const out = [header];
    let zeros = 0;
    for (const b of raw) {
      if (zeros >= 2 && b <= 3) {
        out.push(3);
        zeros = 0;
      }
      out.push(b);
      zeros = b === 0 ? zeros + 1 : 0;
    }
    return Buffer.from(out);
  }
}

/**
 * A High 4:4:4 (profile 244) SPS for 160x90 that takes the longest path through the
 * parser: chroma_format_idc 3, all 12 scaling lists present (64-entry ones included),
 * pic_order_cnt_type 1 with a 255-entry cycle, and frame cropping.
 */
function longestPathSps(): Buffer {
  const w = new BitWriter().u(8, 244).u(8, 0).u(8, 40).ue(0);
  w.ue(3).u(1, 0).ue(0).ue(0).u(1, 0); // chroma 4:4:4, no separate planes, 8-bit, no bypass
  w.u(1, 1); // seq_scaling_matrix_present_flag
  for (let i = 0; i < 12; i++) {
    w.u(1, 1);
    for (let j = 0; j < (i < 6 ? 16 : 64); j++) w.se(j === 0 ? 3 : 0);
  }
  w.ue(0).ue(1).u(1, 0).se(-7).se(9).ue(255); // log2_max_frame_num, poc type 1, its cycle
  for (let i = 0; i < 255; i++) w.se(i % 2 === 0 ? 1 : -1);
  w.ue(1).u(1, 0).ue(9).ue(5).u(1, 1).u(1, 1); // refs, gaps, 10 MBs wide, 6 high, frame_mbs_only, direct_8x8
  w.u(1, 1).ue(0).ue(0).ue(0).ue(6); // crop 6 rows: 96 -> 90 (CropUnitY 1 for 4:4:4)
  w.u(1, 0); // vui_parameters_present_flag
  return w.nal(0x67);
}

// ---------------------------------------------------------------------------------------
// MPEG-TS (ISO/IEC 13818-1)
// ---------------------------------------------------------------------------------------

const PKT = 188;

/** One packet; a short payload is padded with adaptation-field stuffing, as muxers do. */
function tsPacket(pid: number, pusi: boolean, cc: number, payload: Buffer, afc = 1): Buffer {
  const p = Buffer.alloc(PKT, 0xff);
  p[0] = 0x47;
  p[1] = (pusi ? 0x40 : 0) | ((pid >> 8) & 0x1f);
  p[2] = pid & 0xff;
  const room = PKT - 4;
  if (payload.length >= room || afc !== 1) {
    p[3] = (afc << 4) | (cc & 0x0f);
    payload.copy(p, 4, 0, room);
    return p;
  }
  const stuffing = room - payload.length;
  p[3] = (0x3 << 4) | (cc & 0x0f);
  p[4] = stuffing - 1;
  if (stuffing > 1) p[5] = 0x00;
  payload.copy(p, 4 + stuffing);
  return p;
}

/** A PES (or anything) cut into packets on one PID, PUSI on the first. */
function tsStream(pid: number, data: Buffer, cc0 = 0): Buffer {
  const out: Buffer[] = [];
  for (let i = 0, cc = cc0; i < data.length || i === 0; i += PKT - 4, cc++) {
    out.push(tsPacket(pid, i === 0, cc, data.subarray(i, i + PKT - 4)));
    if (data.length === 0) break;
  }
  return cat(...out);
}

function section(tableId: number, ext: number, body: Buffer, fixCrc = true): Buffer {
  const s = cat(u8(tableId, 0, 0), u16(ext), u8(0xc1, 0, 0), body, u32(0));
  const len = s.length - 3;
  s[1] = 0xb0 | ((len >> 8) & 0x0f);
  s[2] = len & 0xff;
  if (fixCrc) s.writeUInt32BE(crc32Mpeg2(s, 0, s.length - 4), s.length - 4);
  return s;
}

const patSection = (pmtPid: number, fixCrc = true): Buffer => section(0x00, 1, cat(u16(1), u16(0xe000 | pmtPid)), fixCrc);

function pmtSection(pcrPid: number, streams: Array<[number, number]>, programInfo = Buffer.alloc(0), fixCrc = true): Buffer {
  const es = streams.map(([type, pid]) => cat(u8(type), u16(0xe000 | pid), u16(0xf000)));
  return section(0x02, 1, cat(u16(0xe000 | pcrPid), u16(0xf000 | programInfo.length), programInfo, ...es), fixCrc);
}

const psi = (pid: number, s: Buffer, cc = 0): Buffer => tsPacket(pid, true, cc, cat(u8(0), s), 1);

/** 2.4.3.7 timestamp field. */
function pesTs(prefix: number, v: number): Buffer {
  const b = Buffer.alloc(5);
  b[0] = (prefix << 4) | ((Math.floor(v / 2 ** 30) & 0x07) << 1) | 1;
  b.writeUInt16BE((((v >>> 15) & 0x7fff) << 1) | 1, 1);
  b.writeUInt16BE(((v & 0x7fff) << 1) | 1, 3);
  return b;
}

interface PesSpec {
  streamId: number;
  pts?: number;
  dts?: number;
  data: Buffer;
  /** PES_packet_length to write; 'auto' for the true value, 0 for unbounded. */
  length?: number | 'auto';
  /** Extra header bytes (stuffing) beyond the timestamps. */
  headerPadding?: number;
}

function pes(spec: PesSpec): Buffer {
  const fields = spec.pts === undefined ? Buffer.alloc(0) : spec.dts === undefined ? pesTs(2, spec.pts) : cat(pesTs(3, spec.pts), pesTs(1, spec.dts));
  const flags = spec.pts === undefined ? 0 : spec.dts === undefined ? 0x80 : 0xc0;
  const header = cat(fields, Buffer.alloc(spec.headerPadding ?? 0, 0xff));
  const trueLength = 3 + header.length + spec.data.length;
  const length = spec.length === undefined || spec.length === 'auto' ? (trueLength > 0xffff ? 0 : trueLength) : spec.length;
  return cat(u8(0, 0, 1, spec.streamId), u16(length), u8(0x84, flags, header.length), header, spec.data);
}

const VIDEO = 0x100;
const AUDIO = 0x101;
const PMT = 0x1000;
const programHead = (): Buffer => cat(psi(0, patSection(PMT)), psi(PMT, pmtSection(VIDEO, [[0x1b, VIDEO], [0x0f, AUDIO]])));

const annexB = (...nals: Buffer[]): Buffer => cat(...nals.map((n) => cat(u8(0, 0, 0, 1), n)));

/** An ADTS header (1.A.2.2) for an AAC-LC 44.1 kHz stereo frame of `frameLength` bytes in total. */
function adts(frameLength: number, rawBlocksMinusOne = 0): Buffer {
  return u8(0xff, 0xf1, 0x50, 0x80 | ((frameLength >> 11) & 0x03), (frameLength >> 3) & 0xff, ((frameLength & 0x07) << 5) | 0x1f, 0xfc | rawBlocksMinusOne);
}

// ---------------------------------------------------------------------------------------
// The corpus
// ---------------------------------------------------------------------------------------

export function nastyInputs(media: MediaFiles): NastyInput[] {
  const flv = parseFlv(media.flv);
  const avcHeader = flv.tags.find((t) => t.type === 9 && t.body[1] === 0)!.body;
  const aacHeader = flv.tags.find((t) => t.type === 8 && t.body[1] === 0)!.body;
  const record = avcHeader.subarray(5);
  const spsLen = record.readUInt16BE(6);
  const sps = record.subarray(8, 8 + spsLen);
  const ppsAt = 8 + spsLen + 1;
  const pps = record.subarray(ppsAt + 2, ppsAt + 2 + record.readUInt16BE(ppsAt));
  const out: NastyInput[] = [];
  const add = (target: string, file: string, note: string, bytes: Buffer): void => {
    out.push({ target, file, note, bytes });
  };

  // --- rtmp-chunks ------------------------------------------------------------------------
  const T = 'rtmp-chunks';
  add(T, 'command-nested-300-deep.bin', 'a connect command whose AMF0 object nests 300 levels: the depth cap, not the stack, must stop it', message(3, MessageType.CommandAmf0, cat(encodeAmf0(['connect', 1]), nestedObjects(300))));
  add(T, 'declared-length-ffffff.bin', 'type 0 header announcing a 16 MiB message (0xFFFFFF) with a few body bytes: rejected at the header, nothing allocated', cat(type0(4, 0, 0xffffff, MessageType.Audio), Buffer.alloc(64, 0xaf)));
  add(T, 'declared-8mib-on-63-streams.bin', '63 chunk streams each opening an 8 MiB (cap) video message and sending one chunk: pending bytes stay those that arrived', cat(...Array.from({ length: 63 }, (_, i) => cat(type0(2 + i, 0, 8 * 1024 * 1024, MessageType.Video), Buffer.alloc(128, i)))));
  add(T, 'zero-length-message-flood.bin', '4000 one-byte type 3 headers after a zero-length type 0 audio message: each is a new empty message (output bounded by input)', cat(type0(4, 10, 0, MessageType.Audio), repeat(type3(4), 4000)));
  add(T, 'zero-size-chunks-interleaved.bin', 'zero-length messages on 3-byte chunk stream ids interleaved with a video message in 128-byte chunks', cat(type0(6, 0, 300, MessageType.Video), Buffer.alloc(128, 0x17), type0(40000, 0, 0, MessageType.Audio), type3(40000), type3(6), Buffer.alloc(128, 1), type1(40000, 5, 0, MessageType.Video), type3(6), Buffer.alloc(44, 2)));
  add(T, 'set-chunk-size-1.bin', 'Set Chunk Size 1 (legal in the spec, below the 128 floor): must be refused before 1-byte chunks flood the heap', cat(message(2, MessageType.SetChunkSize, u32(1)), type0(4, 0, 500, MessageType.Audio), repeat(cat(u8(0xaf), type3(4)), 200)));
  add(T, 'set-chunk-size-top-bit.bin', 'Set Chunk Size 0x80000000 (top bit set, spec 5.4.1) and then 0', cat(message(2, MessageType.SetChunkSize, u32(0x80000000)), message(2, MessageType.SetChunkSize, u32(0))));
  add(T, 'set-chunk-size-max-then-big-message.bin', 'chunk size 0x7FFFFFFF, then a 20000-byte message in a single chunk', cat(message(2, MessageType.SetChunkSize, u32(0x7fffffff)), type0(6, 0, 20000, MessageType.Video), Buffer.alloc(20000, 0x27)));
  add(T, 'extended-timestamp-wrap.bin', 'extended timestamps: absolute 0xFFFFFFFF, then type 3 and type 2 deltas that wrap the 32-bit clock', cat(type0(4, 0xffffffff, 2, MessageType.Audio), u8(0xaf, 1), type3(4), u32(0xffffffff), u8(0xaf, 1), type2(4, 0xffffff), u32(0x10), u8(0xaf, 1), type3(4), u32(0x10), u8(0xaf, 1)));
  add(T, 'too-many-chunk-streams.bin', '65 distinct chunk stream ids (2-, and 3-byte forms): the 64-stream cap', cat(...Array.from({ length: 65 }, (_, i) => cat(type0(64 + i * 997, 0, 4, MessageType.Acknowledgement), u32(i)))));
  add(T, 'abort-mid-message-then-continuation.bin', 'Abort of a half-received message, then a type 3 chunk that would have continued it (starts a new message instead)', cat(type0(6, 0, 300, MessageType.Video), Buffer.alloc(128, 0x17), message(2, MessageType.Abort, u32(6)), type3(6), Buffer.alloc(128, 0x27), type3(6), Buffer.alloc(44, 0x27)));
  add(T, 'type1-before-type0.bin', 'type 1 and type 2 headers on a chunk stream that never had a type 0', cat(type1(7, 0, 10, MessageType.Video), Buffer.alloc(10)));
  add(T, 'aggregate-overrun.bin', 'an aggregate message whose first sub-tag claims 0xFFFFFF bytes', message(6, MessageType.Aggregate, cat(u8(9), u24(0xffffff), u24(0), u8(0), u24(0), Buffer.alloc(40, 0x17))));
  add(T, 'data-amf3-empty.bin', 'a zero-length AMF3 data message (type 15): the session slices off a format byte that is not there', type0(5, 0, 0, MessageType.DataAmf3));
  add(T, 'unknown-message-type.bin', 'message type 0xFF after a valid audio message', cat(message(4, MessageType.Audio, u8(0xaf, 1, 2)), type0(4, 0, 1, 0xff), u8(0)));

  // --- rtmp-handshake ---------------------------------------------------------------------
  const H = 'rtmp-handshake';
  const c1 = (version: number, fill: number): Buffer => {
    const b = Buffer.alloc(HANDSHAKE_SIZE, fill);
    b.writeUInt32BE(0, 0);
    b.writeUInt32BE(version, 4);
    return b;
  };
  const digestC1 = (scheme: 0 | 1): Buffer => {
    const b = c1(0x09007c02, 0x33);
    const base = scheme === 0 ? 8 : 772;
    b.set([0xff, 0xff, 0xd9, 0x00], base); // they sum to 727: the largest digest offset (727 mod 728)
    const at = digestOffset(b, scheme);
    blockDigest(b, at, PLAYER_KEY_SHORT).copy(b, at);
    return b;
  };
  const c2 = Buffer.alloc(HANDSHAKE_SIZE, 0xc2);
  add(H, 'rtmpe-version-6.bin', 'C0 asks for RTMPE (version 6), which is refused at the first byte', cat(u8(6), c1(0, 0)));
  add(H, 'c1-one-byte-short.bin', 'C0 and C1 one byte short: no answer, no error, waits', cat(u8(3), c1(0, 1).subarray(1)));
  add(H, 'digest-version-bad-digest.bin', 'C1 with a Flash Player version but no valid digest: falls back to the plain answer', cat(u8(3), c1(0x09007c02, 0xff), c2));
  add(H, 'digest-scheme1-max-offset.bin', 'valid scheme-1 digest at the largest offset (the digest ends at the last byte of C1), then C2 and a chunk stream with a huge declared length', cat(u8(3), digestC1(1), c2, type0(3, 0, 0xffffff, MessageType.CommandAmf0)));
  add(H, 'digest-scheme0-then-chunks.bin', 'valid scheme-0 digest C1, C2, then a zero-length message flood in the same read', cat(u8(3), digestC1(0), c2, type0(4, 0, 0, MessageType.Audio), repeat(type3(4), 500)));
  add(H, 'exact-c0c1c2-nothing-after.bin', 'exactly C0 C1 C2: done with an empty rest', cat(u8(3), c1(0, 7), c2));

  // --- rtmp-client-handshake --------------------------------------------------------------
  const CH = 'rtmp-client-handshake';
  const serverAnswer = (c0c1: Buffer): Buffer => new ServerHandshake(() => 5).feed(c0c1).output!;
  const clientC0C1 = new ClientHandshake(() => 1).start();
  const digestS0S1S2 = serverAnswer(clientC0C1);
  add(CH, 's0-version-6.bin', 'S0 with version 6: refused at the first byte', cat(u8(6), Buffer.alloc(2 * HANDSHAKE_SIZE)));
  add(CH, 's1-version-no-digest.bin', 'S1 with a server version but garbage where the digest should be: the plain C2 echo', cat(u8(3), c1(0x04050001, 0xee), Buffer.alloc(HANDSHAKE_SIZE, 0x55)));
  add(CH, 's0s1s2-one-byte-short.bin', 'S0 S1 S2 one byte short: waits', digestS0S1S2.subarray(0, digestS0S1S2.length - 1));
  add(CH, 'digest-then-chunk-size-1.bin', 'a digest answer, then Set Chunk Size 1 from the server (below the floor)', cat(digestS0S1S2, message(2, MessageType.SetChunkSize, u32(1))));
  add(CH, 'plain-then-zero-length-flood.bin', 'a plain answer, then 1000 empty messages', cat(serverAnswer(cat(u8(3), c1(0, 9))), type0(4, 0, 0, MessageType.Audio), repeat(type3(4), 1000)));

  // --- rtmp-command -----------------------------------------------------------------------
  const C = 'rtmp-command';
  add(C, 'name-is-number.bin', 'command whose first value is a number, not a name', encodeAmf0([1, 2, null]));
  add(C, 'no-transaction-id.bin', 'a bare command name (ffmpeg server notifications): strict rejects, lenient reads 0', encodeAmf0(['onFCPublish']));
  add(C, 'nested-17-deep.bin', 'connect with an object nested one level past the default maxDepth of 16', cat(encodeAmf0(['connect', 1]), nestedObjects(17)));
  add(C, 'strict-array-count-ffffffff.bin', 'a strict array claiming 0xFFFFFFFF items in 10 bytes', cat(encodeAmf0(['play', 0, null]), u8(0x0a), u32(0xffffffff), u8(5, 5, 5)));
  add(C, 'long-string-7fffffff.bin', 'a long string (0x0C) claiming 0x7FFFFFFF bytes', cat(encodeAmf0(['publish', 5, null]), u8(0x0c), u32(0x7fffffff), Buffer.from('key')));
  add(C, 'setdataframe-then-number.bin', "'@setDataFrame' followed by a number where the handler name belongs", cat(encodeAmf0(['@setDataFrame', 3.5, { width: 1 }])));
  add(C, 'amf3-format-byte-11.bin', 'an AMF3 command with format byte 0x11 (AVM+ switch): refused, not decoded as AMF3', cat(u8(0x11), encodeAmf0(['connect', 1, null])));
  add(C, 'object-without-end.bin', 'a command object whose properties run to the end with no 00 00 09', cat(encodeAmf0(['connect', 1]), u8(0x03), u16(3), Buffer.from('app'), encodeAmf0(['live'])));
  add(C, 'setdataframe-exactly.bin', "exactly the '@setDataFrame' string and nothing after: stripSetDataFrame must not slice past the end", encodeAmf0(['@setDataFrame']));

  // --- amf0 -----------------------------------------------------------------------------------
  const A = 'amf0';
  add(A, 'ecma-arrays-257-deep.bin', 'ECMA arrays nested 257 deep: past the default 16 and the hard 256 cap', nestedEcmaArrays(257));
  add(A, 'strict-array-count-ffffffff.bin', 'strict array count 0xFFFFFFFF with three bytes left: refused before allocating', cat(u8(0x0a), u32(0xffffffff), u8(1, 1, 1)));
  add(A, 'long-string-ffffffff.bin', 'long string length 0xFFFFFFFF', cat(u8(0x0c), u32(0xffffffff), Buffer.from('abc')));
  add(A, 'item-cap-4097.bin', '4097 empty-key properties in one object: the 4096 item cap', cat(u8(0x03), repeat(cat(u16(0), u8(0x05)), 4097), u16(0), u8(0x09)));
  add(A, 'object-end-outside.bin', 'an object-end marker at top level', u8(0x09, 0x05));
  add(A, 'proto-key.bin', "an object with '__proto__' and 'constructor' keys: plain own properties, no prototype pollution", cat(u8(0x03), u16(9), Buffer.from('__proto__'), u8(0x03), u16(5), Buffer.from('value'), u8(0x01, 1), u16(0), u8(0x09), u16(11), Buffer.from('constructor'), u8(0x05), u16(0), u8(0x09)));
  add(A, 'date-nan-and-negative-zero.bin', 'dates holding NaN and -0 and numbers holding NaN and Infinity', cat(u8(0x0b), hex('7ff8000000000001'), u16(0x7fff), u8(0x0b), hex('8000000000000000'), u16(0), u8(0x00), hex('7ff0000000000000')));
  add(A, 'unsupported-markers.bin', 'reference, AVM+ and typed-object markers after valid values', cat(encodeAmf0(['ok']), u8(0x07), u16(0), u8(0x11), u8(0x10)));
  add(A, 'ten-thousand-nulls.bin', '10000 top-level nulls: many values, each one byte', Buffer.alloc(10000, 0x05));
  add(A, 'invalid-utf8.bin', 'strings and keys that are not UTF-8 (lone continuation bytes, overlong forms, surrogates)', cat(u8(0x02), u16(6), hex('80c0afeda080'), u8(0x03), u16(2), hex('ff fe'), u8(0x05), u16(0), u8(0x09)));

  // --- rtmp-aggregate -------------------------------------------------------------------------
  const G = 'rtmp-aggregate';
  const subTag = (type: number, ts: number, body: Buffer, backPointer = 11 + body.length): Buffer => cat(u8(type), u24(body.length), u24(ts & 0xffffff), u8(ts >>> 24), u24(0), body, u32(backPointer));
  add(G, 'subtag-size-ffffff.bin', 'a sub-tag claiming 0xFFFFFF bytes', cat(u8(9), u24(0xffffff), u24(0), u8(0), u24(0), Buffer.alloc(32, 0x17)));
  add(G, 'timestamps-across-wrap.bin', 'sub-tag times 0xFFFFFFFF then 0 then 0x7FFFFFFF on an aggregate near the 32-bit wrap: rebased times leave the 32-bit range', cat(subTag(8, 0xffffffff, u8(0xaf, 1, 0x21)), subTag(9, 0, u8(0x27, 1, 0, 0, 0)), subTag(8, 0x7fffffff, u8(0xaf, 1))));
  add(G, 'zero-size-subtags.bin', '500 empty sub-tags: skipped by the hub, 15 bytes of framing each', repeat(subTag(9, 0, Buffer.alloc(0)), 500));
  add(G, 'truncated-back-pointer.bin', 'the last sub-tag lacks its back pointer', cat(subTag(8, 0, u8(0xaf, 1, 2)), subTag(9, 40, u8(0x27, 1, 0, 0, 0)).subarray(0, 15)));
  add(G, 'script-and-unknown-only.bin', 'only script (18) and unknown (31) sub-tags, and lying back pointers: nothing comes out', cat(subTag(18, 0, encodeAmf0(['onMetaData', { a: 1 }]), 0xffffffff), subTag(31, 1, Buffer.alloc(10), 0)));
  add(G, 'one-byte-aac-subtag.bin', 'an AAC sub-tag with no packet type byte: the hub classification rejects it', subTag(8, 0, u8(0xaf)));

  // --- rtmp-control -------------------------------------------------------------------------
  const U = 'rtmp-control';
  add(U, 'empty.bin', 'empty payload', Buffer.alloc(0));
  add(U, 'one-byte.bin', 'one byte: shorter than the event type', u8(6));
  add(U, 'set-buffer-length-short.bin', 'Set Buffer Length with the stream id but no buffer length', cat(u16(3), u32(1)));
  add(U, 'unknown-event-ffff.bin', 'event type 0xFFFF with a payload', cat(u16(0xffff), u32(0xdeadbeef)));
  add(U, 'ping-with-trailing-4k.bin', 'a ping request followed by 4 KiB of junk', cat(u16(6), u32(42), Buffer.alloc(4096, 0xee)));
  add(U, 'ping-two-bytes.bin', 'a ping request with no timestamp', u16(6));

  // --- flv-tag ------------------------------------------------------------------------------
  const F = 'flv-tag';
  add(F, 'modex-chain-1000.bin', 'enhanced video with 1000 chained ModEx wrappers using the UI16 size form: linear, never reads past the end', cat(u8(0x97), repeat(cat(u8(255), u16(0), u8(0), u8(0x07)), 999), u8(255), u16(0), u8(0), u8(0x01), Buffer.from('avc1'), u24(0)));
  add(F, 'modex-size-ffff.bin', 'ModEx claiming 0xFFFF+1 bytes of modifier in a 10-byte tag', cat(u8(0x97, 255), u16(0xffff), Buffer.alloc(6)));
  add(F, 'avc-record-sps-length-lies.bin', 'an AVC sequence header whose SPS length says 0xFFFF: avcResolution answers undefined', (() => {
    const b = Buffer.from(avcHeader);
    b.writeUInt16BE(0xffff, 5 + 6);
    return b;
  })());
  const bigSps = longestPathSps();
  add(F, 'avc-sps-scaling-lists-poc1.bin', 'a High 4:4:4 SPS with all 12 scaling lists, pic_order_cnt_type 1 with a 255-frame cycle and cropping (the longest parse path; 160x90)', cat(u8(0x17, 0, 0, 0, 0, 1, 244, 0, 40, 0xff, 0xe1), u16(bigSps.length), bigSps, u8(1), u16(4), u8(0x68, 0xeb, 0xe3, 0xcb)));
  add(F, 'avc-sps-scaling-lists-truncated.bin', 'the same SPS cut off in the middle of its scaling lists', cat(u8(1, 244, 0, 40, 0xff, 0xe1), u16(60), bigSps.subarray(0, 60)));
  add(F, 'avc-sps-golomb-32-zeros.bin', 'an SPS whose width is an Exp-Golomb code with 32 leading zeros (no valid 32-bit value)', cat(u8(1, 66, 0, 30, 0xff, 0xe1), u16(12), u8(0x67, 66, 0, 30, 0xf8), Buffer.alloc(7, 0)));
  add(F, 'avc-sps-emulation-prevention-run.bin', 'an SPS made of 00 00 03 runs (every third byte dropped by the RBSP reader)', cat(u8(1, 66, 0, 30, 0xff, 0xe1), u16(300), u8(0x67, 66, 0, 30), repeat(u8(0, 0, 3), 98), u8(0x80, 0x80)));
  add(F, 'multitrack-many-codecs-no-fourcc.bin', 'enhanced multitrack, many tracks with many codecs, ending right after the track header', u8(0x96, 0x20));
  add(F, 'command-frame-truncated.bin', 'an enhanced command frame with no command byte', u8(0xd0));
  add(F, 'avc-record-zero-sps.bin', 'a bare AVC record with numOfSequenceParameterSets 0', u8(1, 100, 0, 31, 0xff, 0xe0, 0));
  add(F, 'audio-ex-modex-multitrack.bin', 'enhanced audio: ModEx wrapping a multitrack header with no FourCC', cat(u8(0x97, 0, 0xaa, 0x05, 0x10)));

  // --- mpegts-demux -------------------------------------------------------------------------
  const D = 'mpegts-demux';
  const idr = u8(0x65, 0x88, 0x84, 0x00, 0x33, 0xff);
  const goodVideo = (pts: number, cc: number, nals = annexB(u8(0x09, 0xf0), sps, pps, idr)): Buffer => tsStream(VIDEO, pes({ streamId: 0xe0, pts, dts: pts, data: nals, length: 0 }), cc);
  const aacFrame = cat(adts(7 + 6), u8(0x21, 0x10, 0x05, 0x00, 0xa0, 0x1c));
  add(D, 'pat-bad-crc.bin', 'PAT with a wrong CRC_32, then valid PMT and PES: nothing is demuxed', cat(psi(0, patSection(PMT, false)), psi(PMT, pmtSection(VIDEO, [[0x1b, VIDEO]])), goodVideo(90000, 0), goodVideo(93600, 1)));
  add(D, 'pmt-bad-crc.bin', 'PMT with a wrong CRC_32', cat(psi(0, patSection(PMT)), psi(PMT, pmtSection(VIDEO, [[0x1b, VIDEO]], Buffer.alloc(0), false)), goodVideo(90000, 0)));
  add(D, 'pmt-program-info-overrun.bin', 'PMT (valid CRC) whose program_info_length (0xFFF) runs past the section: no streams', cat(psi(0, patSection(PMT)), psi(PMT, (() => {
    const s = pmtSection(VIDEO, [[0x1b, VIDEO]]);
    s.writeUInt16BE(0xffff, 10);
    s.writeUInt32BE(crc32Mpeg2(s, 0, s.length - 4), s.length - 4);
    return s;
  })()), goodVideo(90000, 0)));
  add(D, 'pmt-streams-on-psi-pids.bin', 'PMT listing video on the PAT PID, audio on the PMT PID and on the null PID', cat(psi(0, patSection(PMT)), psi(PMT, pmtSection(0, [[0x1b, 0], [0x0f, PMT], [0x0f, 0x1fff]])), goodVideo(90000, 0)));
  add(D, 'pes-length-lies-long.bin', 'audio PES_packet_length 0xFFFF over 2 packets of data, then the next PES starts', cat(programHead(), tsStream(AUDIO, pes({ streamId: 0xc0, pts: 1000, data: repeat(aacFrame, 20), length: 0xffff })), tsStream(AUDIO, pes({ streamId: 0xc0, pts: 3000, data: aacFrame }), 2)));
  add(D, 'pes-length-shorter-than-header.bin', 'PES_packet_length 4, shorter than its own header', cat(programHead(), tsStream(AUDIO, pes({ streamId: 0xc0, pts: 1000, data: aacFrame, length: 4 }))));
  add(D, 'pes-header-255-across-packets.bin', 'PES_header_data_length 255 (stuffing) so the header straddles two packets', cat(programHead(), tsStream(VIDEO, pes({ streamId: 0xe0, pts: 9000, dts: 9000, data: annexB(sps, pps, idr), length: 0, headerPadding: 245 }))));
  add(D, 'pts-33-bit-wrap.bin', 'video and audio PTS crossing the 33-bit wrap (2^33 - 1000 to 2000)', cat(programHead(), goodVideo(2 ** 33 - 1000, 0), tsStream(AUDIO, pes({ streamId: 0xc0, pts: 2 ** 33 - 500, data: aacFrame })), goodVideo(2000, 1), tsStream(AUDIO, pes({ streamId: 0xc0, pts: 2500, data: aacFrame }), 1)));
  add(D, 'continuity-all-same.bin', 'every video packet with continuity counter 0 (duplicates to be dropped)', cat(programHead(), ...Array.from({ length: 12 }, (_, i) => goodVideo(9000 + 3600 * i, 0))));
  add(D, 'adaptation-field-183-with-payload.bin', 'adaptation_field_length 183 in packets that claim a payload', cat(programHead(), (() => {
    const p = tsPacket(VIDEO, true, 0, Buffer.alloc(184, 0xff), 3);
    p[4] = 183;
    return repeat(p, 4);
  })()));
  add(D, 'adts-frame-length-lies.bin', 'ADTS frame_length 0x1FFF (8191) in a 13-byte frame, carried into the next PES', cat(programHead(), tsStream(AUDIO, pes({ streamId: 0xc0, pts: 1000, data: cat(adts(0x1fff), Buffer.alloc(6)) })), tsStream(AUDIO, pes({ streamId: 0xc0, pts: 3000, data: repeat(aacFrame, 3) }), 1)));
  add(D, 'sync-every-187.bin', 'sync bytes every 187 bytes (never a valid 188 packet run)', repeat(cat(u8(0x47), Buffer.alloc(186, 0x47)), 40));
  add(D, 'no-start-codes.bin', 'a video PES with no Annex B start code in 8 KiB of zeros', cat(programHead(), tsStream(VIDEO, pes({ streamId: 0xe0, pts: 9000, dts: 9000, data: Buffer.alloc(8192), length: 0 })), goodVideo(12600, 45)));
  add(D, 'sequence-header-amplification.bin', 'one 20 kB SPS, then 40 one-packet access units each with a changed PPS, asking for a new 20 kB sequence header each time (output/input ratio)', (() => {
    const bigSps = cat(sps, Buffer.alloc(20_000, 0x5a));
    const parts = [programHead(), goodVideo(9000, 0, annexB(u8(0x09, 0xf0), bigSps, pps, idr))];
    let cc = Math.ceil((20_000 + 100) / 184);
    for (let i = 0; i < 40; i++) {
      const changedPps = cat(u8(0x68, 0xce), u8(i, 0x80)); // pps id 0, different bits each time
      parts.push(tsStream(VIDEO, pes({ streamId: 0xe0, pts: 12600 + 3600 * i, dts: 12600 + 3600 * i, data: annexB(changedPps, u8(0x41, 0x9a, i)), length: 0 }), cc++));
    }
    return cat(...parts);
  })());

  // --- mpegts-mux ---------------------------------------------------------------------------
  const M = 'mpegts-mux';
  const rec = (kind: 'audio' | 'video' | 'data', timestamp: number, payload: Buffer, isKeyframe = false, isSequenceHeader = false): Buffer => encodeMuxRecord({ kind, timestamp, payload, isKeyframe, isSequenceHeader });
  const keyframe = (nal = idr, lengthSize = 4): Buffer => cat(u8(0x17, 1, 0, 0, 0), lengthSize === 4 ? u32(nal.length) : lengthSize === 2 ? u16(nal.length) : u8(nal.length), nal);
  add(M, 'length-size-reserved.bin', 'an AVC record with lengthSizeMinusOne 2 (reserved), then frames', cat(rec('video', 0, (() => {
    const b = Buffer.from(avcHeader);
    b[5 + 4] = 0xfe;
    return b;
  })(), true, true), rec('video', 40, keyframe(), true)));
  add(M, 'frame-before-config.bin', 'keyframes and audio before any sequence header', cat(rec('video', 0, keyframe(), true), rec('audio', 0, u8(0xaf, 1, 1, 2, 3))));
  add(M, 'nal-length-ffffffff.bin', 'a keyframe whose NAL length is 0xFFFFFFFF', cat(rec('video', 0, avcHeader, true, true), rec('video', 40, cat(u8(0x17, 1, 0, 0, 0), u32(0xffffffff), idr), true)));
  add(M, 'aac-frame-over-adts-max.bin', 'an AAC raw frame of 8185 bytes (one past what a 13-bit ADTS length holds)', cat(rec('audio', 0, aacHeader, false, true), rec('audio', 23, cat(u8(0xaf, 1), Buffer.alloc(8185, 0x21)))));
  add(M, 'asc-escape-and-explicit-rate.bin', 'AudioSpecificConfigs with the escape object type (31), an explicit 24-bit rate, explicit SBR signalling, and a 1-byte config', cat(rec('audio', 0, u8(0xaf, 0, 0xf8, 0x00, 0x80), false, true), rec('audio', 0, u8(0xaf, 0, 0x17, 0x80, 0xac, 0x44, 0x10), false, true), rec('audio', 0, u8(0xaf, 0, 0x2b, 0x92, 0x08, 0x00), false, true), rec('audio', 0, u8(0xaf, 0, 0x12), false, true), rec('audio', 23, u8(0xaf, 1, 0x21))));
  add(M, 'timestamps-jump-and-wrap.bin', 'frames whose timestamps jump back 5 s, forward 2^32 - 1 ms and sit at the 33-bit 90 kHz wrap', cat(rec('video', 10_000, avcHeader, true, true), rec('audio', 10_000, aacHeader, false, true), rec('video', 10_000, keyframe(), true), rec('video', 5_000, keyframe(u8(0x41, 1, 2))), rec('audio', 0xffffffff, u8(0xaf, 1, 5)), rec('video', 95_443_717, keyframe(), true), rec('audio', 95_443_718, u8(0xaf, 1, 5))));
  add(M, 'hevc-record-255-arrays.bin', 'an enhanced hvc1 sequence start whose record claims 255 NAL arrays of 0xFFFF units', cat(rec('video', 0, cat(u8(0x90), Buffer.from('hvc1'), u8(1), Buffer.alloc(20, 0), u8(0xff), u8(0x20), u16(0xffff), u16(4), u8(0x40, 1, 0xc, 1)), true, true), rec('video', 40, cat(u8(0x93), Buffer.from('hvc1'), u32(3), u8(0x26, 1, 0xaf)), true)));
  add(M, 'flags-lie.bin', 'data kind with keyframe flags, audio flagged as a video sequence header, empty bodies', cat(rec('data', 0, avcHeader, true, true), rec('audio', 0, avcHeader, true, true), rec('video', 0, Buffer.alloc(0), true, true), rec('audio', 0, Buffer.alloc(0), true, false)));
  add(M, 'huge-config-tiny-keyframes.bin', 'a sequence header carrying a 20 kB SPS, then 40 ten-byte keyframes, each a place to repeat the 20 kB parameter sets (output/input ratio)', (() => {
    const bigSps = cat(sps, Buffer.alloc(20_000, 0x5a));
    const bigRecord = cat(record.subarray(0, 6), u16(bigSps.length), bigSps, record.subarray(ppsAt));
    return cat(rec('video', 0, cat(avcHeader.subarray(0, 5), bigRecord), true, true), ...Array.from({ length: 40 }, (_, i) => rec('video', 40 * (i + 1), keyframe(), true)));
  })());

  // --- srt-stream-id --------------------------------------------------------------------------
  const S = 'srt-stream-id';
  add(S, 'length-513.bin', 'a 513-character stream id (one past SRTO_STREAMID)', Buffer.from(`#!::r=a,s=${'k'.repeat(503)}`));
  add(S, 'repeated-keys.bin', 'the r key twice', Buffer.from('#!::r=a,r=b,m=publish'));
  add(S, 'prefix-only.bin', 'only the #!:: prefix', Buffer.from('#!::'));
  add(S, 'flow-id-65-chars.bin', 'a flow id of 65 characters and one with upper case', Buffer.from(`#!::r=${'a'.repeat(65)},m=publish`));
  add(S, 'invalid-utf8.bin', 'bytes that are not UTF-8 around a plausible id', cat(hex('ff fe'), Buffer.from('#!::r=a'), hex('c0 80')));
  add(S, 'empty-pairs.bin', 'pairs with empty keys and values', Buffer.from('#!::=,=,r=,m=,s='));
  add(S, 'mode-bidirectional.bin', 'mode bidirectional (valid SRT syntax, not supported)', Buffer.from('#!::r=flow,m=bidirectional,s=key'));

  return out;
}
