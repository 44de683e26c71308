/**
 * Locates the codec payload inside an FLV tag body for the muxer: legacy AVC/HEVC and
 * AAC headers (Adobe FLV spec E.4.2/E.4.3) and single-track enhanced RTMP headers
 * (Veovera E-RTMP v2 ExVideoTagHeader/ExAudioTagHeader). Classification is tag.ts's;
 * this adds only the offsets and the composition time.
 */
import { parseAudioTag, parseVideoTag } from '../flv/tag.js';
import type { MuxVideoCodec } from './mux-video-config.js';

export type VideoUnit =
  | { type: 'config'; codec: MuxVideoCodec; record: Buffer }
  | { type: 'frame'; codec: MuxVideoCodec; data: Buffer; cts: number; keyframe: boolean }
  /** Nothing to mux, and nothing lost: end of sequence, metadata, command frames. */
  | { type: 'ignore' }
  /** A frame or header the muxer cannot carry (other codecs, multitrack, ModEx); `what` names it for logs. */
  | { type: 'unsupported'; what: string };

export type AudioUnit =
  | { type: 'config'; asc: Buffer }
  | { type: 'frame'; data: Buffer }
  | { type: 'ignore' }
  | { type: 'unsupported'; what: string };

const IGNORE = { type: 'ignore' } as const;
const MULTITRACK_VIDEO = { type: 'unsupported', what: 'multitrack or ModEx video' } as const;
const MULTITRACK_AUDIO = { type: 'unsupported', what: 'multitrack or ModEx audio' } as const;
const TRUNCATED_VIDEO = { type: 'unsupported', what: 'truncated enhanced video tags' } as const;

/** "MP3 audio", "AV1 video": what an operator reads in the warning about frames left out. */
function unsupportedCodec(codec: string, kind: 'audio' | 'video'): { type: 'unsupported'; what: string } {
  return { type: 'unsupported', what: codec === 'other' ? `${kind} in a codec other than ${kind === 'video' ? 'H.264 or HEVC' : 'AAC'}` : `${codec.toUpperCase()} ${kind}` };
}

const PT_SEQUENCE_START = 0;
const PT_CODED_FRAMES = 1;
const PT_CODED_FRAMES_X = 3;
const VIDEO_PT_MULTITRACK = 6;
const AUDIO_PT_MULTITRACK = 5;
const PT_MOD_EX = 7;

/** SI24 CompositionTime: signed, so a negative offset survives (E.4.3.1). */
function readSi24(p: Buffer, at: number): number {
  const v = p.readUIntBE(at, 3);
  return v >= 0x800000 ? v - 0x1000000 : v;
}

export function unwrapVideo(p: Buffer): VideoUnit {
  const info = parseVideoTag(p);
  if (info.isCommandFrame) return IGNORE;
  if (info.codec !== 'avc' && info.codec !== 'hevc') return unsupportedCodec(info.codec, 'video');
  const codec = info.codec;
  const b0 = p[0] as number;
  if (!info.enhanced) {
    // AVCPacketType + CompositionTime, then the record or the NAL units.
    if (info.packetType === PT_SEQUENCE_START) return { type: 'config', codec, record: p.subarray(5) };
    if (info.packetType === PT_CODED_FRAMES) return { type: 'frame', codec, data: p.subarray(5), cts: readSi24(p, 2), keyframe: info.isKeyframe };
    return IGNORE;
  }
  // Enhanced: the packet type sits in byte 0 unless wrapped in ModEx or Multitrack.
  const raw = b0 & 0x0f;
  if (raw === PT_MOD_EX || raw === VIDEO_PT_MULTITRACK) return MULTITRACK_VIDEO;
  if (raw === PT_SEQUENCE_START) return { type: 'config', codec, record: p.subarray(5) };
  if (raw === PT_CODED_FRAMES) {
    if (p.length < 8) return TRUNCATED_VIDEO;
    return { type: 'frame', codec, data: p.subarray(8), cts: readSi24(p, 5), keyframe: info.isKeyframe };
  }
  if (raw === PT_CODED_FRAMES_X) return { type: 'frame', codec, data: p.subarray(5), cts: 0, keyframe: info.isKeyframe };
  return IGNORE;
}

export function unwrapAudio(p: Buffer): AudioUnit {
  const info = parseAudioTag(p);
  if (info.codec !== 'aac') return unsupportedCodec(info.codec, 'audio');
  if (!info.enhanced) {
    if (info.packetType === PT_SEQUENCE_START) return { type: 'config', asc: p.subarray(2) };
    if (info.packetType === PT_CODED_FRAMES) return { type: 'frame', data: p.subarray(2) };
    return IGNORE;
  }
  const raw = (p[0] as number) & 0x0f;
  if (raw === PT_MOD_EX || raw === AUDIO_PT_MULTITRACK) return MULTITRACK_AUDIO;
  if (raw === PT_SEQUENCE_START) return { type: 'config', asc: p.subarray(5) };
  if (raw === PT_CODED_FRAMES) return { type: 'frame', data: p.subarray(5) };
  return IGNORE;
}
