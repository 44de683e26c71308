/**
 * Annex B access units (as MPEG-TS carries H.264 and HEVC) to FLV video tag bodies (as
 * RTMP carries them): parameter sets move out of the frames into a decoder configuration
 * record, sent as a sequence header whenever they change; the remaining NAL units are
 * length-prefixed (ISO/IEC 14496-15, lengthSizeMinusOne = 3). The codec specifics live in
 * VideoCodecRules (demux-h264.ts, demux-hevc.ts).
 */
import { splitAnnexB } from './demux-nal.js';
import { allocWithHeadroom } from '../rtmp/headroom.js';

export type NalRole = 'drop' | 'param' | 'key' | 'frame';

export interface VideoCodecRules {
  /** What a NAL unit is for: dropped (AUD, filler), a parameter set, an IRAP/IDR slice, other. */
  role(nal: Buffer): NalRole;
  /**
   * The slot a parameter set fills (its type and id: a newer one with the same id
   * replaces it), or undefined when it cannot be read (then it is ignored).
   */
  paramSetKey(nal: Buffer): string | undefined;
  /** The sequence header tag body for these parameter sets; undefined while incomplete. */
  sequenceHeader(params: ReadonlyMap<string, Buffer>): Buffer | undefined;
  /** The tag header bytes before the length-prefixed NAL units of a coded frame. */
  frameHeader(keyframe: boolean, compositionTimeMs: number): Buffer;
}

export interface VideoConversion {
  /** A new sequence header, to be sent before the frame. */
  sequenceHeader: Buffer | undefined;
  frame: Buffer | undefined;
  keyframe: boolean;
  /** The frame was too large for an FLV tag and was dropped. */
  oversized: boolean;
}

/** FLV and RTMP carry a tag's size in 24 bits. */
const MAX_TAG_BODY = 0xffffff;
/** Parameter set NAL units are listed with 16-bit lengths in both configuration records. */
const MAX_PARAM_SET = 0xffff;
/**
 * All parameter sets together. Real streams have one or two of each, a few hundred bytes;
 * the id ranges alone (H.264: 32 SPS, 256 PPS) would let a stream pin megabytes and make
 * sequence headers too large for a tag.
 */
const MAX_PARAM_BYTES = 256 * 1024;
/**
 * A sequence header re-sent on every parameter-set change would let a stream that changes
 * one tiny PPS per packet make a full header (up to MAX_PARAM_BYTES) per packet. Headers
 * are paid for instead from credit: the parameter sets' own bytes and half of the other
 * bytes of each access unit, so tags out stay bounded by the TS in (frames take the other
 * half). Real streams change parameter sets rarely and between megabytes of frames; their
 * headers never wait. The allowance covers the record's own few bytes.
 */
const HEADER_CREDIT_ALLOWANCE = 64;
const MAX_HEADER_CREDIT = 2 * MAX_PARAM_BYTES;

export class AnnexBVideoConverter {
  private readonly params = new Map<string, Buffer>();
  private paramBytes = 0;
  private paramsChanged = false;
  /** Bytes of sequence header this stream has paid for (see HEADER_CREDIT_ALLOWANCE). */
  private headerCredit = 0;
  private configured = false;
  private sawKeyframe = false;

  constructor(private readonly rules: VideoCodecRules) {}

  /**
   * Converts one access unit. No frame comes out until a sequence header has been made and
   * a keyframe seen: before that a decoder has nothing to start from (a join mid-GOP).
   */
  convert(accessUnit: Buffer, compositionTimeMs: number): VideoConversion {
    const kept: Buffer[] = [];
    let keyframe = false;
    let bodyBytes = 0;
    let paramBytes = 0;
    for (const nal of splitAnnexB(accessUnit)) {
      const role = this.rules.role(nal);
      if (role === 'drop') continue;
      if (role === 'param') {
        this.updateParam(nal);
        paramBytes += nal.length;
        continue;
      }
      if (role === 'key') keyframe = true;
      kept.push(nal);
      bodyBytes += 4 + nal.length;
    }

    this.headerCredit = Math.min(MAX_HEADER_CREDIT, this.headerCredit + paramBytes + (accessUnit.length - paramBytes) / 2);
    let sequenceHeader: Buffer | undefined;
    const changed = this.paramsChanged ? this.rules.sequenceHeader(this.params) : undefined;
    // A header not paid for yet goes out with a later access unit.
    if (changed !== undefined && changed.length <= this.headerCredit + HEADER_CREDIT_ALLOWANCE) {
      sequenceHeader = changed;
      this.headerCredit -= changed.length;
      this.paramsChanged = false;
      this.configured = true;
    }
    if (keyframe && this.configured) this.sawKeyframe = true;
    if (!this.sawKeyframe || kept.length === 0) return { sequenceHeader, frame: undefined, keyframe, oversized: false };

    const header = this.rules.frameHeader(keyframe, compositionTimeMs);
    if (header.length + bodyBytes > MAX_TAG_BODY) return { sequenceHeader, frame: undefined, keyframe, oversized: true };
    // With headroom, RTMP players get the frame without another copy (../rtmp/headroom.ts).
    const frame = allocWithHeadroom(header.length + bodyBytes);
    let at = header.copy(frame, 0);
    for (const nal of kept) {
      frame.writeUInt32BE(nal.length, at);
      at += 4;
      at += nal.copy(frame, at);
    }
    return { sequenceHeader, frame, keyframe, oversized: false };
  }

  private updateParam(nal: Buffer): void {
    if (nal.length > MAX_PARAM_SET) return;
    const key = this.rules.paramSetKey(nal);
    if (key === undefined) return;
    const known = this.params.get(key);
    if (known !== undefined && known.equals(nal)) return;
    const bytes = this.paramBytes - (known?.length ?? 0) + nal.length;
    if (bytes > MAX_PARAM_BYTES) return;
    this.paramBytes = bytes;
    // A copy: the access unit's buffer is reused by the PES layer.
    this.params.set(key, Buffer.from(nal));
    this.paramsChanged = true;
  }
}

/** CompositionTime is SI24 in both the AVC header and the enhanced CodedFrames header. */
export function clampSi24(v: number): number {
  return Math.max(-0x800000, Math.min(0x7fffff, v));
}
