/**
 * MPEG-TS (ISO/IEC 13818-1) to FLV tag bodies, for SRT ingest: packets, PAT, the first
 * program's PMT, then one video stream (H.264 0x1B or HEVC 0x24) and one AAC/ADTS audio
 * stream (0x0F) reassembled from PES packets and converted as RTMP carries them.
 *
 * Sans-I/O and lossy-link tolerant: garbage, holes and nonsense are counted, never
 * thrown. A hole costs the PES (video: the access unit) it falls into and the demuxer
 * carries on with the next one; frames that referenced a lost one are passed on, as a
 * relay should (the decoder conceals, the next keyframe repairs). Only programming
 * errors (bad limits, a throwing onTag) escape.
 */
import { AdtsReader, type AdtsFrame } from './demux-aac.js';
import { h264Rules } from './demux-h264.js';
import { hevcRules } from './demux-hevc.js';
import { ContinuityTracker, NULL_PID, parseTsPacketHeader } from './demux-packet.js';
import { PesAssembler, type PesUnit } from './demux-pes.js';
import { PAT_PID, SectionAssembler, parsePat, parsePmt, type PmtStream } from './demux-psi.js';
import { TsPacketSync } from './demux-sync.js';
import { PtsTimeline } from './demux-timeline.js';
import { AnnexBVideoConverter } from './demux-video.js';
import type { FlvTag } from './types.js';

export interface TsDemuxerLimits {
  /** Largest PES payload (a video access unit) kept; larger ones are dropped. Default 8 MiB. */
  maxPesBytes?: number;
  /**
   * A program map lists elementary streams that are not taken (MP2 or AC-3 audio, a
   * second audio track, subtitles): called with them each time the map changes, so the
   * operator can be told why a track is missing.
   */
  onUnusedStreams?(streams: readonly { pid: number; streamType: number }[]): void;
}

export interface TsDemuxerCounters {
  /** 188-byte packets found in sync. */
  packets: number;
  /** Times alignment was lost and bytes skipped to find the next packet. */
  resyncs: number;
  /** Continuity counter gaps on the PIDs in use (lost or damaged packets). */
  continuityErrors: number;
  /** PES packets (or video access units) thrown away: incomplete, malformed, too large. */
  pesDropped: number;
  /** Times the program's clock jumped by more than 10 s and the timeline continued past it. */
  timestampJumps: number;
  videoFrames: number;
  audioFrames: number;
}

const DEFAULT_MAX_PES_BYTES = 8 * 1024 * 1024;
/** An FLV tag body has a 24-bit size; leave room for the NAL length prefixes. */
const MAX_PES_BYTES_LIMIT = 15 * 1024 * 1024;

// 13818-1 Table 2-34 and its amendments.
const STREAM_TYPE_AAC_ADTS = 0x0f;
const STREAM_TYPE_H264 = 0x1b;
const STREAM_TYPE_HEVC = 0x24;

/** 2.4.3.3 Table 2-3: PIDs 0x0000-0x000F are reserved for tables, 0x1FFF is the null packet. */
const FIRST_FREE_PID = 0x0010;

/** AAC, and (ignored for AAC, FLV spec E.4.2.1) 44 kHz, 16-bit, stereo. */
const FLV_AAC = 0xaf;

interface VideoTrack {
  pid: number;
  streamType: number;
  pes: PesAssembler;
  converter: AnnexBVideoConverter;
}

interface AudioTrack {
  pid: number;
  pes: PesAssembler;
  adts: AdtsReader;
  /** The AudioSpecificConfig last sent as a sequence header; -1 before the first. */
  config: number;
}

const isElementaryPid = (pid: number): boolean => pid >= FIRST_FREE_PID && pid < NULL_PID;

export class TsDemuxer {
  readonly counters: TsDemuxerCounters = { packets: 0, resyncs: 0, continuityErrors: 0, pesDropped: 0, timestampJumps: 0, videoFrames: 0, audioFrames: 0 };

  private readonly maxPesBytes: number;
  private readonly sync: TsPacketSync;
  private readonly continuity = new ContinuityTracker();
  private readonly timeline = new PtsTimeline(() => {
    this.counters.timestampJumps += 1;
  });
  private readonly pat = new SectionAssembler((s) => this.onPat(s));
  private lastPat: Buffer | undefined;
  private pmtPid = -1;
  private pmt: SectionAssembler | undefined;
  private lastPmt: Buffer | undefined;
  private video: VideoTrack | undefined;
  private audio: AudioTrack | undefined;
  private readonly onUnusedStreams: TsDemuxerLimits['onUnusedStreams'];

  constructor(
    private readonly onTag: (tag: FlvTag) => void,
    limits: TsDemuxerLimits = {},
  ) {
    this.onUnusedStreams = limits.onUnusedStreams;
    const max = limits.maxPesBytes ?? DEFAULT_MAX_PES_BYTES;
    if (!Number.isInteger(max) || max < 1 || max > MAX_PES_BYTES_LIMIT) {
      throw new RangeError(`maxPesBytes must be an integer in 1..${MAX_PES_BYTES_LIMIT}, got ${max}`);
    }
    this.maxPesBytes = max;
    this.sync = new TsPacketSync(
      (p) => this.onPacket(p),
      () => {
        this.counters.resyncs += 1;
      },
    );
  }

  /** Any slicing of the byte stream (SRT delivers 1316-byte messages, files deliver anything). */
  feed(chunk: Buffer): void {
    this.sync.push(chunk);
  }

  /** End of stream: emit what is complete (the last packet, the access unit in progress). */
  flush(): void {
    this.sync.flush();
    this.video?.pes.flush();
    this.audio?.pes.flush();
  }

  private onPacket(p: Buffer): void {
    this.counters.packets += 1;
    const h = parseTsPacketHeader(p);
    if (h === undefined) return;
    const pid = h.pid;
    const video = this.video?.pid === pid ? this.video : undefined;
    const audio = this.audio?.pid === pid ? this.audio : undefined;
    const section = pid === PAT_PID ? this.pat : pid === this.pmtPid ? this.pmt : undefined;
    if (video === undefined && audio === undefined && section === undefined) return;

    const verdict = this.continuity.check(h);
    if (verdict === 'duplicate') return;
    if (verdict === 'gap') {
      this.counters.continuityErrors += 1;
      section?.reset();
      video?.pes.abort();
      audio?.pes.abort();
      audio?.adts.reset(); // also when no PES was in progress: a carried frame tail is orphaned
    }
    if (!h.hasPayload) return;
    const payload = p.subarray(h.payloadOffset);
    if (section !== undefined) section.push(payload, h.pusi);
    else if (video !== undefined) video.pes.push(payload, h.pusi);
    else audio?.pes.push(payload, h.pusi);
  }

  private onPat(section: Buffer): void {
    if (this.lastPat?.equals(section)) return; // repeated every ~100 ms, usually unchanged
    const pid = parsePat(section);
    if (pid === undefined || !isElementaryPid(pid)) return;
    this.lastPat = Buffer.from(section);
    if (pid === this.pmtPid) return;
    if (this.pmtPid >= 0) this.continuity.forget(this.pmtPid);
    this.pmtPid = pid;
    this.pmt = new SectionAssembler((s) => this.onPmt(s));
    this.lastPmt = undefined;
  }

  private onPmt(section: Buffer): void {
    if (this.lastPmt?.equals(section)) return;
    const streams = parsePmt(section);
    if (streams === undefined) return;
    this.lastPmt = Buffer.from(section);
    const usable = (s: PmtStream): boolean => isElementaryPid(s.pid) && s.pid !== this.pmtPid;
    const video = streams.find((s) => usable(s) && (s.streamType === STREAM_TYPE_H264 || s.streamType === STREAM_TYPE_HEVC));
    const audio = streams.find((s) => usable(s) && s.streamType === STREAM_TYPE_AAC_ADTS && s.pid !== video?.pid);
    this.setVideo(video);
    this.setAudio(audio);
    const unused = streams.filter((s) => usable(s) && s !== video && s !== audio);
    if (unused.length > 0) this.onUnusedStreams?.(unused);
  }

  private setVideo(s: PmtStream | undefined): void {
    const cur = this.video;
    if (cur !== undefined && s !== undefined && cur.pid === s.pid && cur.streamType === s.streamType) return;
    if (cur !== undefined) {
      cur.pes.abort();
      this.continuity.forget(cur.pid);
    }
    this.video = undefined;
    if (s === undefined) return;
    const converter = new AnnexBVideoConverter(s.streamType === STREAM_TYPE_HEVC ? hevcRules : h264Rules);
    const pes = new PesAssembler(this.maxPesBytes, true, (u) => this.onVideoUnit(u, converter), () => this.dropped());
    this.video = { pid: s.pid, streamType: s.streamType, pes, converter };
  }

  private setAudio(s: PmtStream | undefined): void {
    const cur = this.audio;
    if (cur !== undefined && s !== undefined && cur.pid === s.pid) return;
    if (cur !== undefined) {
      cur.pes.abort();
      this.continuity.forget(cur.pid);
    }
    this.audio = undefined;
    if (s === undefined) return;
    const track: AudioTrack = {
      pid: s.pid,
      pes: new PesAssembler(
        this.maxPesBytes,
        false,
        (u) => this.onAudioUnit(u, track),
        () => {
          this.dropped();
          track.adts.reset();
        },
      ),
      adts: new AdtsReader((f) => this.onAudioFrame(f, track)),
      config: -1,
    };
    this.audio = track;
  }

  private dropped(): void {
    this.counters.pesDropped += 1;
  }

  private onVideoUnit(unit: PesUnit, converter: AnnexBVideoConverter): void {
    if (unit.pts === undefined || unit.dts === undefined) {
      this.dropped();
      return;
    }
    const dts = this.timeline.unwrap(unit.dts);
    const pts = this.timeline.unwrap(unit.pts);
    const timestamp = this.timeline.toMs(dts);
    // Presentation minus the decode time actually sent, so a clamped DTS keeps the PTS.
    const cts = this.timeline.toMsSigned(pts) - timestamp;
    const out = converter.convert(unit.data, cts);
    if (out.sequenceHeader !== undefined) this.onTag({ kind: 'video', timestamp, payload: out.sequenceHeader });
    if (out.oversized) this.dropped();
    if (out.frame !== undefined) {
      this.counters.videoFrames += 1;
      this.onTag({ kind: 'video', timestamp, payload: out.frame });
    }
  }

  private onAudioUnit(unit: PesUnit, track: AudioTrack): void {
    track.adts.push(unit.data, unit.pts === undefined ? undefined : this.timeline.unwrap(unit.pts));
  }

  private onAudioFrame(f: AdtsFrame, track: AudioTrack): void {
    const timestamp = this.timeline.toMs(f.ticks);
    if (f.config !== track.config) {
      track.config = f.config;
      this.onTag({ kind: 'audio', timestamp, payload: Buffer.from([FLV_AAC, 0, f.config >> 8, f.config & 0xff]) });
    }
    const payload = Buffer.allocUnsafe(2 + f.raw.length);
    payload[0] = FLV_AAC;
    payload[1] = 1; // AACPacketType 1: raw
    f.raw.copy(payload, 2);
    this.counters.audioFrames += 1;
    this.onTag({ kind: 'audio', timestamp, payload });
  }
}
