/**
 * Hub messages (FLV tag bodies) to a fragmented MP4 file (ISO/IEC 14496-12 8.8), for
 * recordings: the moov comes first with empty sample tables and the samples follow in
 * moof + mdat fragments of about a second, so a file cut off by a crash plays up to its
 * last complete fragment. Sans-I/O: a message in, file bytes out.
 *
 * Tracks: H.264 or HEVC video (timescale 90 kHz) and AAC audio (timescale = its sample
 * rate). They are fixed once both headers came, or TRACK_WAIT_MS of frames after the
 * first coded frame (MPEG-TS sources deliver the audio header after the first video
 * keyframe); the frames of that wait are held and written then. The caller starts a new
 * file (and a new muxer) when a codec configuration changes.
 */
import { ProtocolError } from '../../lib/errors.js';
import type { ContainerInput, ContainerMuxer, FilePatch } from '../container.js';
import { unwrapAudio, unwrapVideo } from '../mpegts/mux-flv-input.js';
import type { MuxVideoCodec } from '../mpegts/mux-video-config.js';
import { mp4AudioConfig, type Mp4AudioConfig } from './audio-config.js';
import { SAMPLE_FLAGS_NON_SYNC, SAMPLE_FLAGS_SYNC, writeFragment, type FragmentSample } from './fragment.js';
import { initSegment, mehdBox, MOVIE_TIMESCALE, type TrackSpec } from './init-segment.js';
import { mp4VideoConfig, type Mp4VideoConfig } from './video-config.js';

export interface Fmp4MuxerOptions {
  /**
   * A new fragment starts once this much media time has passed since the open one
   * began (and at every video keyframe): about what a crash can lose. default 1000
   */
  fragmentMs?: number;
  /** A fragment is emitted early rather than hold more than this many bytes. default 64 MiB */
  maxFragmentBytes?: number;
}

export interface Fmp4MuxerCounters {
  /** Headers and frames dropped: malformed, unsupported codec, no track, before the first keyframe. */
  skipped: number;
  /** moof + mdat pairs written. */
  fragments: number;
}

const DEFAULT_FRAGMENT_MS = 1000;
/** How long coded frames wait for the other kind's header before the tracks are fixed without it. */
export const TRACK_WAIT_MS = 1000;
const DEFAULT_MAX_FRAGMENT_BYTES = 64 * 1024 * 1024;
const VIDEO_TIMESCALE = 90000;
/** An AAC frame is 1024 samples (960-sample frames are not signalled in FLV). */
const AAC_FRAME_SAMPLES = 1024;
/** The duration of a video frame with no neighbour to measure against: 1/30 s. */
const LONE_VIDEO_FRAME_TICKS = VIDEO_TIMESCALE / 30;
const MAX_U32 = 0xffffffff;
const MIN_I32 = -0x80000000;
const MAX_I32 = 0x7fffffff;

interface HeldSample {
  data: Buffer;
  /** Decode and composition times in the track's timescale. */
  dts: number;
  pts: number;
  sync: boolean;
}

class Track {
  /** Finalised samples of the open fragment. */
  samples: FragmentSample[] = [];
  baseDecodeTime = 0;
  /** The newest sample, held until the next one tells its duration. */
  held: HeldSample | undefined;
  /** Decode time where the last finalised sample ends: no later sample starts before it. */
  end = 0;
  lastDuration: number | undefined;

  constructor(
    readonly spec: TrackSpec,
    /** Duration of a last sample that has no predecessor to copy. */
    readonly loneDuration: number,
  ) {}

  /** Milliseconds to this track's timescale; rounding each time, never accumulating. */
  ticks(ms: number): number {
    return Math.round((ms * this.spec.timescale) / 1000);
  }
}

/**
 * Whether a sample is a well-formed sequence of length-prefixed NAL units (ISO/IEC
 * 14496-15 5.3.2 / 8.3.2): a truncated tag would otherwise become a sample whose last
 * NAL unit runs past its end.
 */
function wellFormedNalUnits(data: Buffer, lengthSize: number): boolean {
  if (data.length === 0) return false;
  let pos = 0;
  while (pos < data.length) {
    if (pos + lengthSize > data.length) return false;
    pos += lengthSize + data.readUIntBE(pos, lengthSize);
  }
  return pos === data.length;
}

export class Fmp4Muxer implements ContainerMuxer {
  readonly counters: Fmp4MuxerCounters = { skipped: 0, fragments: 0 };

  private readonly fragmentMs: number;
  private readonly maxFragmentBytes: number;

  /** Configurations seen before the tracks are decided; the latest of each kind wins. */
  private videoConfig: Mp4VideoConfig | undefined;
  private audioConfig: Mp4AudioConfig | undefined;

  private decided = false;
  /** Coded frames that came before the tracks were fixed, written when they are. */
  private pending: ContainerInput[] = [];
  private tracks: Track[] = [];
  private video: Track | undefined;
  private audio: Track | undefined;
  /** Until the first video keyframe nothing is written, so the file starts on one. */
  private waitingForKeyframe = false;
  private mehdSlotOffset: number | undefined;

  private sequenceNumber = 0;
  private openSamples = 0;
  private openBytes = 0;
  /** Hub time at which the open fragment began; undefined when nothing is open or held. */
  private openedAtMs: number | undefined;

  constructor(options: Fmp4MuxerOptions = {}) {
    this.fragmentMs = options.fragmentMs ?? DEFAULT_FRAGMENT_MS;
    this.maxFragmentBytes = options.maxFragmentBytes ?? DEFAULT_MAX_FRAGMENT_BYTES;
  }

  push(message: ContainerInput): Buffer[] {
    const out: Buffer[] = [];
    // Metadata has no place in the tracks; players read what they need from the codecs.
    if (message.kind === 'data') return out;
    try {
      if (message.kind === 'video') this.pushVideo(message, out);
      else this.pushAudio(message, out);
    } catch (err) {
      // Parsing fails before any state changes, so a malformed tag costs only itself.
      if (!(err instanceof ProtocolError)) throw err;
      this.counters.skipped += 1;
    }
    return out;
  }

  flush(): Buffer[] {
    const out: Buffer[] = [];
    // The source stopped or the file ends: the tracks are what came.
    if (!this.decided && this.pending.length > 0) this.decide(out);
    for (const track of this.tracks) {
      const held = track.held;
      if (held === undefined) continue;
      track.held = undefined;
      this.finalise(track, held, track.lastDuration ?? track.loneDuration, out);
    }
    if (this.openSamples > 0) out.push(this.emitFragment());
    this.openedAtMs = undefined;
    return out;
  }

  /**
   * A mehd with the movie's duration, to be written over the init segment's free box
   * once a file is closed cleanly (after the last flush()). `totalMs` is the caller's
   * measure (last timestamp minus first); the muxer's own, which includes the last
   * samples' durations, wins when longer. Undefined until the init segment exists.
   */
  durationPatch(totalMs: number): FilePatch | undefined {
    if (this.mehdSlotOffset === undefined) return undefined;
    let ms = Number.isFinite(totalMs) ? totalMs : 0;
    for (const t of this.tracks) ms = Math.max(ms, (t.end * MOVIE_TIMESCALE) / t.spec.timescale);
    return { offset: this.mehdSlotOffset, bytes: mehdBox(ms) };
  }

  takesNewTracks(): boolean {
    return !this.decided;
  }

  /**
   * Before the tracks are fixed, a coded frame waits (for the other kind's header) unless
   * both headers are in, or the first waiting frame is TRACK_WAIT_MS old. Returns whether
   * the frame was taken into the wait.
   */
  private waitForTracks(message: ContainerInput, out: Buffer[]): boolean {
    if (this.decided) return false;
    const first = this.pending[0];
    if (this.videoConfig === undefined || this.audioConfig === undefined) {
      if (first === undefined || message.timestamp - first.timestamp < TRACK_WAIT_MS) {
        this.pending.push(message);
        return true;
      }
    }
    this.decide(out);
    return false;
  }

  private skip(): void {
    this.counters.skipped += 1;
  }

  private pushVideo(message: ContainerInput, out: Buffer[]): void {
    const unit = unwrapVideo(message.payload);
    if (unit.type === 'ignore') return;
    if (unit.type === 'unsupported') return this.skip();
    if (unit.type === 'config') return this.videoHeader(unit.codec, unit.record);

    if (!this.decided && this.videoConfig === undefined) return this.skip();
    if (this.waitForTracks(message, out)) return;
    const track = this.video;
    if (track?.spec.kind !== 'video') return this.skip();
    const config = track.spec.config;
    if (unit.codec !== config.codec || !wellFormedNalUnits(unit.data, config.lengthSize)) return this.skip();
    const sync = unit.keyframe || message.isKeyframe;
    if (this.waitingForKeyframe) {
      if (!sync) return this.skip();
      this.waitingForKeyframe = false;
    }
    this.addSample(track, message.timestamp, unit.cts, unit.data, sync, out);
  }

  private pushAudio(message: ContainerInput, out: Buffer[]): void {
    const unit = unwrapAudio(message.payload);
    if (unit.type === 'ignore') return;
    if (unit.type === 'unsupported') return this.skip();
    if (unit.type === 'config') return this.audioHeader(unit.asc);

    if (!this.decided && this.audioConfig === undefined) return this.skip();
    if (this.waitForTracks(message, out)) return;
    const track = this.audio;
    if (track === undefined || unit.data.length === 0 || this.waitingForKeyframe) return this.skip();
    this.addSample(track, message.timestamp, 0, unit.data, true, out);
  }

  private videoHeader(codec: MuxVideoCodec, record: Buffer): void {
    if (!this.decided) {
      this.videoConfig = mp4VideoConfig(codec, record);
      return;
    }
    // Encoders repeat their headers; only a different one is news this file cannot take.
    const spec = this.video?.spec;
    if (spec?.kind === 'video' && spec.config.codec === codec && spec.config.record.equals(record)) return;
    this.skip();
  }

  private audioHeader(asc: Buffer): void {
    if (!this.decided) {
      this.audioConfig = mp4AudioConfig(asc);
      return;
    }
    const spec = this.audio?.spec;
    if (spec?.kind === 'audio' && spec.config.asc.equals(asc)) return;
    this.skip();
  }

  /** At the first coded frame that has a header: one track per kind whose header came. */
  private decide(out: Buffer[]): void {
    this.decided = true;
    let trackId = 1;
    if (this.videoConfig !== undefined) {
      const spec: TrackSpec = { kind: 'video', trackId: trackId++, timescale: VIDEO_TIMESCALE, config: this.videoConfig };
      this.video = new Track(spec, LONE_VIDEO_FRAME_TICKS);
    }
    if (this.audioConfig !== undefined) {
      const spec: TrackSpec = { kind: 'audio', trackId: trackId++, timescale: this.audioConfig.sampleRate, config: this.audioConfig };
      this.audio = new Track(spec, AAC_FRAME_SAMPLES);
    }
    this.tracks = [this.video, this.audio].filter((t): t is Track => t !== undefined);
    this.waitingForKeyframe = this.video !== undefined;
    const init = initSegment(this.tracks.map((t) => t.spec));
    this.mehdSlotOffset = init.mehdSlotOffset;
    out.push(init.bytes);
    const waited = this.pending;
    this.pending = [];
    for (const message of waited) out.push(...this.push(message));
  }

  private addSample(track: Track, dtsMs: number, ctsMs: number, data: Buffer, sync: boolean, out: Buffer[]): void {
    const held = track.held;
    // Decode times never go backwards (or below 0): a sample that comes early starts
    // where its predecessor does, with that one getting duration 0.
    const dts = Math.max(track.ticks(dtsMs), held?.dts ?? track.end);
    const pts = track.ticks(dtsMs + ctsMs);
    if (held !== undefined) this.finalise(track, held, dts - held.dts, out);

    if (this.openSamples > 0) {
      const keyframe = sync && track === this.video;
      const long = this.openedAtMs !== undefined && dtsMs - this.openedAtMs >= this.fragmentMs;
      if (keyframe || long) {
        out.push(this.emitFragment());
        this.openedAtMs = dtsMs;
      }
    }
    this.openedAtMs ??= dtsMs;
    track.held = { data, dts, pts, sync };
  }

  /** Appends a sample whose duration is now known to the open fragment. */
  private finalise(track: Track, sample: HeldSample, duration: number, out: Buffer[]): void {
    if (this.openSamples > 0 && this.openBytes + sample.data.length > this.maxFragmentBytes) out.push(this.emitFragment());
    const clamped = Math.min(duration, MAX_U32);
    if (track.samples.length === 0) track.baseDecodeTime = sample.dts;
    track.samples.push({
      data: sample.data,
      duration: clamped,
      flags: sample.sync ? SAMPLE_FLAGS_SYNC : SAMPLE_FLAGS_NON_SYNC,
      compositionOffset: Math.min(MAX_I32, Math.max(MIN_I32, sample.pts - sample.dts)),
    });
    track.end = sample.dts + clamped;
    if (clamped > 0) track.lastDuration = clamped;
    this.openSamples += 1;
    this.openBytes += sample.data.length;
  }

  private emitFragment(): Buffer {
    this.sequenceNumber += 1;
    const bytes = writeFragment(
      this.sequenceNumber,
      this.tracks
        .filter((t) => t.samples.length > 0)
        .map((t) => ({ trackId: t.spec.trackId, baseDecodeTime: t.baseDecodeTime, samples: t.samples, allSync: t.spec.kind === 'audio' })),
    );
    for (const t of this.tracks) t.samples = [];
    this.openSamples = 0;
    this.openBytes = 0;
    this.counters.fragments += 1;
    return bytes;
  }
}
