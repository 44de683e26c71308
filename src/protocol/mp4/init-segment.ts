/**
 * The initialisation segment of a fragmented MP4 file: ftyp + moov (ISO/IEC 14496-12
 * 4.3, 8.2-8.8) with empty sample tables and an mvex announcing that the samples come in
 * movie fragments. Sample entries per ISO/IEC 14496-15 (avc1/avcC 5.4, hvc1/hvcC 8.4)
 * and ISO/IEC 14496-14 (mp4a/esds 5.6).
 */
import { BoxWriter } from './boxes.js';
import type { Mp4AudioConfig } from './audio-config.js';
import type { Mp4VideoConfig } from './video-config.js';

export type TrackSpec =
  | { kind: 'video'; trackId: number; timescale: number; config: Mp4VideoConfig }
  | { kind: 'audio'; trackId: number; timescale: number; config: Mp4AudioConfig };

export interface InitSegment {
  bytes: Buffer;
  /** Offset in `bytes` of a free box exactly the size of mehdBox()'s result. */
  mehdSlotOffset: number;
}

/** mvhd's timescale; the mehd duration is in it too. */
export const MOVIE_TIMESCALE = 1000;

/** 8.2.2.3 unity matrix {0x00010000,0,0, 0,0x00010000,0, 0,0,0x40000000}. */
const UNITY_MATRIX = [0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000];
/** ISO 639-2/T 'und' packed as three 5-bit letters (8.4.2.3). */
const LANGUAGE_UND = 0x55c4;
const TKHD_ENABLED_IN_MOVIE = 0x000003;
const URL_SELF_CONTAINED = 0x000001;
/** 14496-1 7.2.2.1 tags and 7.2.6.6 values. */
const TAG_ES_DESCRIPTOR = 0x03;
const TAG_DECODER_CONFIG = 0x04;
const TAG_DECODER_SPECIFIC_INFO = 0x05;
const TAG_SL_CONFIG = 0x06;
const OTI_MPEG4_AUDIO = 0x40;
/** streamType 0x05 (audio) << 2 | upStream 0 | reserved 1. */
const STREAM_TYPE_AUDIO = 0x15;
/** SLConfigDescriptor predefined 2: reserved for MP4 files (14496-14 3.1.2). */
const SL_PREDEFINED_MP4 = 0x02;

function matrix(w: BoxWriter): void {
  for (const v of UNITY_MATRIX) w.u32(v);
}

/** 14496-1 8.3.3 sizeOfInstance: 7 bits per byte, high bit set on all but the last. */
function descriptorLength(n: number): Buffer {
  const out: number[] = [n & 0x7f];
  for (let v = n >>> 7; v > 0; v >>>= 7) out.unshift(0x80 | (v & 0x7f));
  return Buffer.from(out);
}

function descriptor(tag: number, ...body: Buffer[]): Buffer {
  const payload = Buffer.concat(body);
  return Buffer.concat([Buffer.from([tag]), descriptorLength(payload.length), payload]);
}

/** ES_Descriptor for an AAC track: the decoder's configuration is the ASC as received. */
function esDescriptor(trackId: number, asc: Buffer): Buffer {
  const decoderConfig = Buffer.alloc(13);
  decoderConfig[0] = OTI_MPEG4_AUDIO;
  decoderConfig[1] = STREAM_TYPE_AUDIO;
  // bufferSizeDB, maxBitrate and avgBitrate stay 0: unknown when the file begins.
  return descriptor(
    TAG_ES_DESCRIPTOR,
    Buffer.from([trackId >> 8, trackId & 0xff, 0x00]), // ES_ID, no dependency/URL/OCR flags, priority 0
    descriptor(TAG_DECODER_CONFIG, decoderConfig, descriptor(TAG_DECODER_SPECIFIC_INFO, asc)),
    descriptor(TAG_SL_CONFIG, Buffer.from([SL_PREDEFINED_MP4])),
  );
}

function ftyp(w: BoxWriter): void {
  // iso6 brings tfdt and default-base-is-moof (iso5); players that only know isom read it too.
  w.box('ftyp').fourcc('iso6').u32(0);
  for (const brand of ['iso6', 'iso5', 'isom', 'mp41']) w.fourcc(brand);
  w.end();
}

function mvhd(w: BoxWriter, nextTrackId: number): void {
  // Duration 0: unknown while recording, and the fragments carry the real timeline.
  w.fullBox('mvhd', 0, 0).u32(0).u32(0).u32(MOVIE_TIMESCALE).u32(0);
  w.u32(0x00010000).u16(0x0100).zeros(10); // rate 1.0, volume 1.0, reserved
  matrix(w);
  w.zeros(24).u32(nextTrackId).end(); // pre_defined
}

function tkhd(w: BoxWriter, t: TrackSpec): void {
  w.fullBox('tkhd', 0, TKHD_ENABLED_IN_MOVIE).u32(0).u32(0).u32(t.trackId).u32(0).u32(0);
  w.zeros(8).u16(0).u16(0); // reserved, layer, alternate_group
  w.u16(t.kind === 'audio' ? 0x0100 : 0).u16(0);
  matrix(w);
  const width = t.kind === 'video' ? t.config.width : 0;
  const height = t.kind === 'video' ? t.config.height : 0;
  w.u32(width * 0x10000).u32(height * 0x10000).end(); // 16.16 fixed point
}

function videoSampleEntry(w: BoxWriter, c: Mp4VideoConfig): void {
  w.box(c.codec === 'avc' ? 'avc1' : 'hvc1').zeros(6).u16(1); // reserved, data_reference_index
  w.u16(0).u16(0).zeros(12); // pre_defined, reserved, pre_defined
  w.u16(c.width).u16(c.height);
  w.u32(0x00480000).u32(0x00480000).u32(0).u16(1); // 72 dpi, reserved, frame_count
  w.zeros(32).u16(0x0018).u16(0xffff); // compressorname, depth, pre_defined -1
  // 'avc1'/'hvc1' (not avc3/hev1): the parameter sets live here, out of band.
  w.box(c.codec === 'avc' ? 'avcC' : 'hvcC').bytes(c.record).end();
  w.end();
}

function audioSampleEntry(w: BoxWriter, trackId: number, c: Mp4AudioConfig): void {
  w.box('mp4a').zeros(6).u16(1).zeros(8); // reserved, data_reference_index, reserved
  w.u16(c.channelCount).u16(16).u16(0).u16(0);
  // samplerate is 16.16 and cannot say 88.2 or 96 kHz; decoders take the rate from the ASC.
  w.u32(c.sampleRate <= 0xffff ? c.sampleRate * 0x10000 : 0);
  w.fullBox('esds', 0, 0).bytes(esDescriptor(trackId, c.asc)).end();
  w.end();
}

function trak(w: BoxWriter, t: TrackSpec): void {
  w.box('trak');
  tkhd(w, t);
  w.box('mdia');
  w.fullBox('mdhd', 0, 0).u32(0).u32(0).u32(t.timescale).u32(0).u16(LANGUAGE_UND).u16(0).end();
  const [handler, name] = t.kind === 'video' ? ['vide', 'VideoHandler'] : ['soun', 'SoundHandler'];
  w.fullBox('hdlr', 0, 0).u32(0).fourcc(handler).zeros(12).bytes(Buffer.from(`${name}\0`, 'latin1')).end();
  w.box('minf');
  if (t.kind === 'video') w.fullBox('vmhd', 0, 1).u16(0).zeros(6).end(); // flags 1 per 12.1.2.2
  else w.fullBox('smhd', 0, 0).u16(0).u16(0).end();
  w.box('dinf').fullBox('dref', 0, 0).u32(1).fullBox('url ', 0, URL_SELF_CONTAINED).end().end().end();
  w.box('stbl');
  w.fullBox('stsd', 0, 0).u32(1);
  if (t.kind === 'video') videoSampleEntry(w, t.config);
  else audioSampleEntry(w, t.trackId, t.config);
  w.end();
  // The tables are required (8.5.1) and empty: every sample is in a fragment.
  w.fullBox('stts', 0, 0).u32(0).end();
  w.fullBox('stsc', 0, 0).u32(0).end();
  w.fullBox('stsz', 0, 0).u32(0).u32(0).end();
  w.fullBox('stco', 0, 0).u32(0).end();
  w.end(); // stbl
  w.end(); // minf
  w.end(); // mdia
  w.end(); // trak
}

const MEHD_SIZE = 20;

/**
 * A version 1 mehd (8.8.2): the duration of the whole movie, fragments included, in the
 * movie timescale.
 */
export function mehdBox(durationMs: number): Buffer {
  const w = new BoxWriter(MEHD_SIZE);
  w.fullBox('mehd', 1, 0).u64(Math.max(0, Math.round(durationMs))).end();
  return w.finish();
}

/**
 * ftyp + moov. The mvex holds a free box where a mehd fits: a cleanly closed file gets
 * the real duration written over it, while a file cut short has no mehd at all, so
 * readers derive the duration from the fragments instead of trusting a 0 (8.1.2 allows a
 * free box in any container).
 */
export function initSegment(tracks: readonly TrackSpec[]): InitSegment {
  const w = new BoxWriter(1024);
  ftyp(w);
  w.box('moov');
  mvhd(w, Math.max(0, ...tracks.map((t) => t.trackId)) + 1);
  for (const t of tracks) trak(w, t);
  w.box('mvex');
  const mehdSlotOffset = w.position;
  w.box('free').zeros(MEHD_SIZE - 8).end();
  for (const t of tracks) {
    // Defaults are all given per fragment (tfhd/trun), so the trex ones are 0.
    w.fullBox('trex', 0, 0).u32(t.trackId).u32(1).u32(0).u32(0).u32(0).end();
  }
  w.end(); // mvex
  w.end(); // moov
  return { bytes: w.finish(), mehdSlotOffset };
}
