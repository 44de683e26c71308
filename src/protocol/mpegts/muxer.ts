/**
 * FLV tag bodies (the hub's unit) to a live MPEG-TS byte stream (ISO/IEC 13818-1), for
 * SRT outputs. Sans-I/O: one message in, whole 188-byte packets out.
 *
 * One program: PMT on 0x1000, video (H.264 or HEVC) on 0x100, AAC (ADTS) on 0x101. A
 * change of video codec moves video to the other of 0x100 and 0x102 with a new PMT
 * version: a stream_type does not change under a PID, and receivers (FFmpeg among them)
 * keep a PID's first decoder. The
 * PCR rides on the video PID (or audio's when there is no video) and equals the DTS of
 * the frame it is sent with, as SRS and nginx-rtmp do: players buffer by their own
 * latency setting, so a T-STD head start buys nothing for a live relay.
 */
import { ProtocolError } from '../../lib/errors.js';
import { ADTS_HEADER_SIZE, ADTS_MAX_RAW_FRAME, parseAudioSpecificConfig, writeAdtsHeader, type AdtsConfig } from './adts.js';
import { toAnnexB } from './annexb.js';
import { unwrapAudio, unwrapVideo } from './mux-flv-input.js';
import { pesPacketCount, writePcrOnlyPacket, writePesPackets } from './mux-packets.js';
import { msTo90kHz, pesHeader } from './mux-pes.js';
import { patPacket, pmtPacket, type PmtStream } from './mux-psi.js';
import { parseAvcConfig, parseHevcConfig, type MuxVideoConfig } from './mux-video-config.js';
import { TS_PACKET_SIZE } from './types.js';

export { packForSrt } from './srt-pack.js';

export interface TsMuxerOptions {
  /** PAT/PMT repeat interval in ms (also sent before every keyframe). default 100 */
  psiIntervalMs?: number;
  /** Called the first time each kind of frame MPEG-TS cannot carry arrives ("MP3 audio"). */
  onUnsupported?: (what: string) => void;
}

export interface TsMuxerInput {
  kind: 'audio' | 'video' | 'data';
  timestamp: number;
  payload: Buffer;
  isKeyframe: boolean;
  isSequenceHeader: boolean;
}

export interface TsMuxerCounters {
  /** Transport packets written. */
  packets: number;
  videoFrames: number;
  audioFrames: number;
  /** Frames and headers dropped: before the first keyframe, unsupported codec, malformed, no config yet. */
  skipped: number;
}

const TRANSPORT_STREAM_ID = 1;
const PROGRAM_NUMBER = 1;
const PMT_PID = 0x1000;
const VIDEO_PID = 0x100;
const AUDIO_PID = 0x101;
/** Video's PID after a codec change, alternating with VIDEO_PID. */
const VIDEO_PID_AFTER_CODEC_CHANGE = 0x102;
/** stream_type, table 2-34 and its amendments. */
const STREAM_TYPE_H264 = 0x1b;
const STREAM_TYPE_HEVC = 0x24;
const STREAM_TYPE_ADTS_AAC = 0x0f;
/** stream_id, table 2-22. */
const STREAM_ID_VIDEO = 0xe0;
const STREAM_ID_AUDIO = 0xc0;
/** 2.7.2 requires a PCR at least every 100 ms; DVB (TR 101 290) asks for 40 ms. */
const PCR_INTERVAL_MS = 40;
/**
 * A DTS this far behind the last PCR is a timeline jump, not interleaving jitter: the
 * PCR follows it instead of holding still until the timeline catches up.
 */
const PCR_BACKWARD_JUMP_MS = 1000;
const DEFAULT_PSI_INTERVAL_MS = 100;

const EMPTY = Buffer.alloc(0);

export class TsMuxer {
  readonly counters: TsMuxerCounters = { packets: 0, videoFrames: 0, audioFrames: 0, skipped: 0 };

  private readonly psiIntervalMs: number;
  private readonly onUnsupported: ((what: string) => void) | undefined;
  private readonly unsupportedSeen = new Set<string>();
  private readonly pat = patPacket({ transportStreamId: TRANSPORT_STREAM_ID, programNumber: PROGRAM_NUMBER, pmtPid: PMT_PID });
  private pmt: Buffer | undefined;
  private pmtSignature = '';
  private pmtVersion = 0;
  /** The current PMT has not been sent yet: send PSI with the next output. */
  private pmtPending = false;
  /** Whether any PMT went out; until then a changed PMT keeps version 0. */
  private pmtEverSent = false;
  private lastPsiMs: number | undefined;
  private lastPcrMs: number | undefined;

  private video: MuxVideoConfig | undefined;
  private videoPid = VIDEO_PID;
  private audio: AdtsConfig | undefined;
  private waitingForKeyframe = true;

  private ccPat = 0;
  private ccPmt = 0;
  private ccVideo = 0;
  /** The counter of the video PID not in use, kept for a change back. */
  private ccIdleVideo = 0;
  private ccAudio = 0;

  constructor(options: TsMuxerOptions = {}) {
    this.psiIntervalMs = options.psiIntervalMs ?? DEFAULT_PSI_INTERVAL_MS;
    this.onUnsupported = options.onUnsupported;
  }

  mux(message: TsMuxerInput): Buffer {
    if (message.kind === 'data') return EMPTY;
    try {
      return message.kind === 'video' ? this.muxVideo(message) : this.muxAudio(message);
    } catch (err) {
      // One malformed tag costs that tag, not the output: the next keyframe recovers.
      if (err instanceof ProtocolError) {
        this.counters.skipped += 1;
        return EMPTY;
      }
      throw err;
    }
  }

  private muxVideo(message: TsMuxerInput): Buffer {
    const unit = unwrapVideo(message.payload);
    if (unit.type === 'ignore') return EMPTY;
    if (unit.type === 'unsupported') return this.unsupported(unit.what);
    if (unit.type === 'config') {
      const config = unit.codec === 'avc' ? parseAvcConfig(unit.record) : parseHevcConfig(unit.record);
      if (this.video?.codec !== config.codec) {
        // A new codec cannot continue the old one's prediction chain, nor the old PID.
        this.waitingForKeyframe = true;
        if (this.video !== undefined) {
          // Each PID's continuity counter carries on where that PID left off.
          this.videoPid = this.videoPid === VIDEO_PID ? VIDEO_PID_AFTER_CODEC_CHANGE : VIDEO_PID;
          [this.ccVideo, this.ccIdleVideo] = [this.ccIdleVideo, this.ccVideo];
        }
      }
      this.video = config;
      this.updatePmt();
      return EMPTY;
    }
    const video = this.video;
    if (video === undefined || video.codec !== unit.codec) {
      this.counters.skipped += 1;
      return EMPTY;
    }
    const au = toAnnexB(unit.data, video.lengthSize, video.codec, video.parameterSets, unit.keyframe || message.isKeyframe);
    const keyframe = unit.keyframe || message.isKeyframe || au.randomAccess;
    if (this.waitingForKeyframe) {
      if (!keyframe) {
        this.counters.skipped += 1;
        return EMPTY;
      }
      this.waitingForKeyframe = false;
    }

    const ts = message.timestamp;
    const header = pesHeader({
      streamId: STREAM_ID_VIDEO,
      pts90k: msTo90kHz(ts + unit.cts),
      dts90k: msTo90kHz(ts),
      payloadLength: au.length,
      bounded: false,
    });
    au.segments.unshift(header);
    const pesSpec = {
      pid: this.videoPid,
      segments: au.segments,
      length: au.length + header.length,
      pcrBase: keyframe || this.pcrDue(ts) ? this.takePcr(ts) : undefined,
      randomAccess: keyframe,
    };
    const withPsi = keyframe || this.psiDue(ts);
    const out = Buffer.allocUnsafe(((withPsi ? 2 : 0) + pesPacketCount(pesSpec)) * TS_PACKET_SIZE);
    const at = withPsi ? this.writePsi(out, ts) : 0;
    this.ccVideo = writePesPackets(out, at, pesSpec, this.ccVideo);
    this.counters.videoFrames += 1;
    this.counters.packets += out.length / TS_PACKET_SIZE;
    return out;
  }

  private muxAudio(message: TsMuxerInput): Buffer {
    const unit = unwrapAudio(message.payload);
    if (unit.type === 'ignore') return EMPTY;
    if (unit.type === 'unsupported') return this.unsupported(unit.what);
    if (unit.type === 'config') {
      const config = parseAudioSpecificConfig(unit.asc);
      if (config === undefined) {
        this.counters.skipped += 1;
        return EMPTY;
      }
      this.audio = config;
      this.updatePmt();
      return EMPTY;
    }
    const audio = this.audio;
    if (audio === undefined || unit.data.length > ADTS_MAX_RAW_FRAME) {
      this.counters.skipped += 1;
      return EMPTY;
    }

    const ts = message.timestamp;
    const adts = Buffer.allocUnsafe(ADTS_HEADER_SIZE);
    writeAdtsHeader(adts, 0, audio, unit.data.length);
    const payloadLength = ADTS_HEADER_SIZE + unit.data.length;
    const header = pesHeader({ streamId: STREAM_ID_AUDIO, pts90k: msTo90kHz(ts), payloadLength, bounded: true });
    const pcrDue = this.pcrDue(ts);
    // With video in the program the PCR lives on the video PID; when video is sparse
    // (low frame rate, or not started yet) the clock goes out in a packet of its own.
    const pcrOnVideo = pcrDue && this.video !== undefined;
    const pesSpec = {
      pid: AUDIO_PID,
      segments: [header, adts, unit.data],
      length: header.length + payloadLength,
      pcrBase: pcrDue && !pcrOnVideo ? this.takePcr(ts) : undefined,
      randomAccess: false,
    };
    const withPsi = this.psiDue(ts);
    const count = (withPsi ? 2 : 0) + (pcrOnVideo ? 1 : 0) + pesPacketCount(pesSpec);
    const out = Buffer.allocUnsafe(count * TS_PACKET_SIZE);
    let at = withPsi ? this.writePsi(out, ts) : 0;
    if (pcrOnVideo) {
      writePcrOnlyPacket(out, at, this.videoPid, this.takePcr(ts), this.ccVideo);
      at += TS_PACKET_SIZE;
    }
    this.ccAudio = writePesPackets(out, at, pesSpec, this.ccAudio);
    this.counters.audioFrames += 1;
    this.counters.packets += count;
    return out;
  }

  private unsupported(what: string): Buffer {
    this.counters.skipped += 1;
    if (!this.unsupportedSeen.has(what)) {
      this.unsupportedSeen.add(what);
      this.onUnsupported?.(what);
    }
    return EMPTY;
  }

  private pcrDue(ts: number): boolean {
    return this.lastPcrMs === undefined || ts - this.lastPcrMs >= PCR_INTERVAL_MS || this.lastPcrMs - ts > PCR_BACKWARD_JUMP_MS;
  }

  /**
   * The PCR for a PES with this DTS, kept monotonic: audio can have pushed the clock a
   * few ms past the next video DTS, and a PCR must never step back (2.4.2.2).
   */
  private takePcr(ts: number): number {
    const last = this.lastPcrMs;
    const pcrMs = last !== undefined && ts < last && last - ts <= PCR_BACKWARD_JUMP_MS ? last : ts;
    this.lastPcrMs = pcrMs;
    return msTo90kHz(pcrMs);
  }

  private psiDue(ts: number): boolean {
    const last = this.lastPsiMs;
    return this.pmtPending || last === undefined || ts - last >= this.psiIntervalMs || ts < last;
  }

  /** PAT then PMT, so a receiver joining anywhere finds the program within an interval (2.4.4). */
  private writePsi(out: Buffer, ts: number): number {
    const pmt = this.pmt;
    if (pmt === undefined) throw new Error('PSI requested before any stream was configured');
    this.pat.copy(out, 0);
    out[3] = 0x10 | this.ccPat;
    this.ccPat = (this.ccPat + 1) & 0x0f;
    pmt.copy(out, TS_PACKET_SIZE);
    out[TS_PACKET_SIZE + 3] = 0x10 | this.ccPmt;
    this.ccPmt = (this.ccPmt + 1) & 0x0f;
    this.lastPsiMs = ts;
    this.pmtPending = false;
    this.pmtEverSent = true;
    return 2 * TS_PACKET_SIZE;
  }

  /** Rebuilds the PMT when the set of streams changes, with a new version_number (2.4.4.9). */
  private updatePmt(): void {
    const streams: PmtStream[] = [];
    if (this.video !== undefined) streams.push({ streamType: this.video.codec === 'avc' ? STREAM_TYPE_H264 : STREAM_TYPE_HEVC, pid: this.videoPid });
    if (this.audio !== undefined) streams.push({ streamType: STREAM_TYPE_ADTS_AAC, pid: AUDIO_PID });
    const pcrPid = this.video !== undefined ? this.videoPid : AUDIO_PID;
    const signature = `${pcrPid}:${streams.map((s) => `${s.streamType}/${s.pid}`).join(',')}`;
    if (signature === this.pmtSignature) return;
    if (this.pmtEverSent) this.pmtVersion = (this.pmtVersion + 1) & 0x1f;
    this.pmtSignature = signature;
    this.pmt = pmtPacket({
      transportStreamId: TRANSPORT_STREAM_ID,
      programNumber: PROGRAM_NUMBER,
      pmtPid: PMT_PID,
      pcrPid,
      version: this.pmtVersion,
      streams,
    });
    this.pmtPending = true;
  }
}
