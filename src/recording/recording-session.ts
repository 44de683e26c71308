import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { RecordingEvent } from '../core/flow-events.js';
import type { MediaFlags, OutputSink } from '../core/output-feed.js';
import type { ContainerInput, ContainerMuxer } from '../protocol/container.js';
import { parseVideoTag } from '../protocol/flv/tag.js';
import { RecordingFileWriter } from './file-writer.js';
import { createContainerMuxer } from './muxers.js';
import { renderPathTemplate } from './path-template.js';
import type { RecordingFileSystem } from './recording-fs.js';
import { repairTornEnd } from './repair.js';
import { RECORDING_EXTENSIONS, type RecordingEntry, type RecordingFormat, type RecordingIndex } from './recording-index.js';

/**
 * Audio that arrives before any video header may be followed by one (servers such as
 * nginx-rtmp forward the audio header first): a file starts on audio alone only after
 * this much audio with no video header, rather than becoming a short audio-only file.
 */
const AUDIO_ONLY_GRACE_MS = 1000;
/** What each format takes, for the note on a file that had to leave frames out. */
const CARRIES: Record<RecordingFormat, string> = {
  mp4: 'it takes H.264 or HEVC video and AAC audio',
  mpegts: 'it takes H.264 or HEVC video and AAC audio',
  flv: 'it takes every codec RTMP carries',
};
/** Index progress (size, duration) is updated at most this often per file. */
const PROGRESS_INTERVAL_MS = 1000;

export interface RecordingSessionOptions {
  /** The flow recorded, or the record job (exactly one of them). */
  flowId: string | null;
  jobId: string | null;
  /** Name used for {flowId} in the path template (a job's id for jobs). */
  nameInPath: string;
  format: RecordingFormat;
  segmentMs: number;
  pathTemplate: string;
}

export interface RecordingSessionDeps {
  index: RecordingIndex;
  fs: RecordingFileSystem;
  now(): number;
  events(event: RecordingEvent): void;
  logger: Logger;
  /** The session stopped because a write failed; it takes no more media. */
  failed(error: Error): void;
  /** Makes each file's muxer (default: by format); tests inject a broken one. */
  muxer?(format: RecordingFormat): ContainerMuxer;
}

export function newRecordingId(): string {
  return `rec_${randomBytes(8).toString('hex')}`;
}

/** The file being written: its index entry, muxer, writer and where its media time starts. */
interface OpenFile {
  entry: RecordingEntry;
  muxer: ContainerMuxer;
  writer: RecordingFileWriter;
  /** Hub timestamp of the file's first frame: the file's time zero. */
  startTs: number;
  lastTs: number;
  lastProgressAt: number;
}

/**
 * One recording session as an output sink: a publisher and whatever reconnects within
 * the recorder's timeout. It writes one or more files: a new one when `segmentMs` has
 * passed at a keyframe, and, for MP4, when a codec header changes (a reconnecting or
 * failed-over encoder with other settings): MPEG-TS and FLV carry the change in-stream.
 *
 * A file is created at the first frame, not at the headers, so a publisher that sends
 * nothing leaves nothing behind. Every file's time starts at 0.
 */
export class RecordingSession implements OutputSink {
  readonly sessionId = `ses_${randomBytes(6).toString('hex')}`;
  private file: OpenFile | undefined;
  private segment = 0;
  private metadata: Buffer | undefined;
  private videoHeader: Buffer | undefined;
  private audioHeader: Buffer | undefined;
  private stopped = false;
  /** A new source took over and has not sent a coded frame yet; `freshVideoHeader`: it sent a video header. */
  private restarted = false;
  private freshVideoHeader = false;
  /** Audio frames seen without a video header while no file is open: the start of an audio-only file. */
  private audioOnlyHeld: ContainerInput[] = [];
  /** Files still being closed; finish() waits for them. */
  private readonly closing = new Set<Promise<void>>();
  private readonly closingWriters = new Set<RecordingFileWriter>();
  readonly files: string[] = [];

  constructor(
    private readonly options: RecordingSessionOptions,
    private readonly deps: RecordingSessionDeps,
  ) {}

  /** The file being written, for status. */
  get current(): RecordingEntry | undefined {
    return this.file && this.deps.index.get(this.file.entry.id);
  }

  /**
   * A new source took over within the recorder's timeout (an encoder reconnected). Its
   * headers replace the last one's as they come; a video header it does not send before
   * its first audio frame is not its own: an audio-only encoder after a video one.
   */
  sourceRestarted(): void {
    this.restarted = true;
    this.freshVideoHeader = false;
  }

  /** Always true: what a file's format cannot carry is reported in that file's note instead. */
  sendMedia(kind: 'audio' | 'video', timestamp: number, payload: Buffer, flags: MediaFlags): boolean {
    this.take(kind, timestamp, payload, flags);
    return true;
  }

  private take(kind: 'audio' | 'video', timestamp: number, payload: Buffer, flags: MediaFlags): void {
    if (this.stopped) return;
    if (flags.isSequenceHeader) {
      this.onHeader(kind, payload);
      return;
    }
    if (this.restarted) this.firstFrameOfNewSource(kind);
    // A file starts on a join point: the feed's gate guarantees one after every (re)start.
    const joinPoint = flags.isKeyframe || (kind === 'audio' && this.videoHeader === undefined);
    if (this.file && joinPoint && timestamp - this.file.startTs >= this.options.segmentMs) this.closeFile(null);
    const message: ContainerInput = { kind, timestamp, payload, isKeyframe: flags.isKeyframe, isSequenceHeader: false };
    if (!this.file) {
      if (!joinPoint) return;
      if (kind === 'audio') return this.holdAudioOnly(message);
      this.openFile(timestamp);
    }
    this.mux(message);
  }

  /**
   * Kept for the start of the next file only: a second onMetaData mid-file (a failover to
   * an encoder with other settings) crashes ffprobe 5.1 when it lists an FLV's frames.
   */
  sendMetadata(_timestamp: number, payload: Buffer): void {
    if (this.stopped) return;
    this.metadata = payload;
  }

  sendData(timestamp: number, payload: Buffer): void {
    if (this.stopped || !this.file) return;
    this.mux({ kind: 'data', timestamp, payload, isKeyframe: false, isSequenceHeader: false });
  }

  /**
   * Bytes waiting for the disk, in the file being written and in those still closing: on
   * a disk that hangs, each segment's file would otherwise start a fresh allowance while
   * the last ones keep theirs, and memory would grow past storage.maxWriteBacklog.
   */
  backlog(): number {
    let bytes = this.file?.writer.backlog() ?? 0;
    for (const writer of this.closingWriters) bytes += writer.backlog();
    return bytes;
  }

  /** The source stopped: write out what the muxer holds back, so the file is whole up to here. */
  flush(): void {
    const file = this.file;
    if (file) file.writer.write(this.held(file));
  }

  /** What the muxer holds back; a muxer that fails here loses its last fragment, nothing else. */
  private held(file: OpenFile): Buffer[] {
    try {
      return file.muxer.flush();
    } catch (err) {
      this.deps.logger.error({ recordingId: file.entry.id, err: (err as Error).message }, 'muxer failed at a flush');
      return [];
    }
  }

  /**
   * Ends the session: the open file is completed (`note` says why it ended early, e.g. low
   * disk space) and every file closed. Idempotent.
   */
  async finish(note: string | null = null): Promise<void> {
    this.stopped = true;
    if (this.file) this.closeFile(note);
    while (this.closing.size > 0) await Promise.all([...this.closing]);
  }

  private firstFrameOfNewSource(kind: 'audio' | 'video'): void {
    this.restarted = false;
    if (kind !== 'audio' || this.freshVideoHeader || this.videoHeader === undefined) return;
    // Replayed into the next file, the last source's video header would have fMP4 wait for
    // a keyframe that never comes: a file marked ready with no samples at all.
    this.videoHeader = undefined;
    if (this.options.format === 'mp4') this.closeFile(null);
  }

  /**
   * Audio with no video header is held for AUDIO_ONLY_GRACE_MS (a video header may follow),
   * then an audio-only file starts with all of it: nothing of the grace is lost.
   */
  private holdAudioOnly(message: ContainerInput): void {
    this.audioOnlyHeld.push(message);
    const first = this.audioOnlyHeld[0]!;
    if (message.timestamp - first.timestamp < AUDIO_ONLY_GRACE_MS) return;
    const held = this.audioOnlyHeld;
    this.audioOnlyHeld = [];
    this.openFile(first.timestamp);
    for (const m of held) this.mux(m);
  }

  private onHeader(kind: 'audio' | 'video', payload: Buffer): void {
    if (kind === 'video') this.freshVideoHeader = true;
    const previous = kind === 'video' ? this.videoHeader : this.audioHeader;
    if (previous?.equals(payload)) return;
    if (kind === 'video') {
      this.videoHeader = payload;
      this.audioOnlyHeld = []; // The file starts at the video's first keyframe after all.
    } else {
      this.audioHeader = payload;
    }
    if (!this.file) return;
    // MPEG-TS and FLV carry a new configuration mid-stream (a failover to an encoder with
    // other settings stays one file); fragmented MP4 fixes it in the init segment, so the
    // next frame (a keyframe of the new configuration) opens a new file. The first header
    // of a kind joins the file while its tracks are still open: MPEG-TS sources send the
    // audio header just after the first video keyframe.
    const joins = previous === undefined && this.file.muxer.takesNewTracks?.() === true;
    if (this.options.format === 'mp4' && !joins) this.closeFile(null);
    // MPEG-TS keeps the video PID across a codec change (H.264 to HEVC on a failover), and
    // FFmpeg then goes on decoding the new codec as the old one: a new file instead.
    else if (this.options.format === 'mpegts' && kind === 'video' && previous !== undefined && videoCodecOf(previous) !== videoCodecOf(payload)) this.closeFile(null);
    else this.mux({ kind, timestamp: this.file.lastTs, payload, isKeyframe: false, isSequenceHeader: true });
  }

  private openFile(timestamp: number): void {
    const { index, now } = this.deps;
    const id = newRecordingId();
    const start = new Date(now());
    const ext = RECORDING_EXTENSIONS[this.options.format];
    let name = renderPathTemplate(this.options.pathTemplate, { flowId: this.options.nameInPath, start, id });
    // Two files of one second with a template without {id}: the second gets the id too.
    if (index.list().some((e) => e.file === `${name}.${ext}`)) name = `${name}_${id}`;
    const entry: RecordingEntry = {
      id,
      flowId: this.options.flowId,
      jobId: this.options.jobId,
      sessionId: this.sessionId,
      segment: this.segment++,
      format: this.options.format,
      file: `${name}.${ext}`,
      status: 'recording',
      startedAt: start.toISOString(),
      endedAt: null,
      durationMs: 0,
      bytes: 0,
      error: null,
      note: null,
      interrupted: false,
    };
    index.add(entry);
    const writer = new RecordingFileWriter(this.deps.fs, index.path(entry), (err) => this.onWriteError(entry.id, err));
    this.file = { entry, muxer: (this.deps.muxer ?? createContainerMuxer)(this.options.format), writer, startTs: timestamp, lastTs: timestamp, lastProgressAt: now() };
    this.files.push(entry.id);
    this.deps.logger.info({ recordingId: id, file: entry.file, format: entry.format }, 'recording started');
    this.deps.events({ type: 'recording.started', ...this.eventBase(entry) });
    const headerAt = (payload: Buffer, kind: 'audio' | 'video' | 'data'): ContainerInput => ({ kind, timestamp, payload, isKeyframe: false, isSequenceHeader: true });
    if (this.metadata) this.mux(headerAt(this.metadata, 'data'));
    if (this.videoHeader) this.mux(headerAt(this.videoHeader, 'video'));
    if (this.audioHeader) this.mux(headerAt(this.audioHeader, 'audio'));
  }

  private mux(message: ContainerInput): void {
    const file = this.file;
    if (!file) return;
    // Audio interleaved behind the keyframe the file opened on (MPEG-TS sources send it
    // late) belongs to the previous file: clamped, it would stack at time 0.
    if (message.kind === 'audio' && !message.isSequenceHeader && message.timestamp < file.startTs) return;
    const at = Math.max(message.timestamp, file.startTs);
    let bytes: Buffer[];
    try {
      bytes = file.muxer.push({ ...message, timestamp: at - file.startTs });
    } catch (err) {
      // The muxers skip malformed media themselves; anything else is a bug, and it must
      // cost this recording, never the publisher or the flow's other readers.
      this.onWriteError(file.entry.id, Object.assign(new Error(`muxer failed: ${(err as Error).message}`), { code: 'EMUX' }));
      return;
    }
    file.writer.write(bytes);
    if (message.kind !== 'data' && at > file.lastTs) file.lastTs = at;
    const now = this.deps.now();
    if (now - file.lastProgressAt >= PROGRESS_INTERVAL_MS) {
      file.lastProgressAt = now;
      this.deps.index.update(file.entry.id, { durationMs: file.lastTs - file.startTs, bytes: file.writer.bytesWritten });
      void file.writer.verify();
    }
  }

  private closeFile(note: string | null): void {
    const file = this.file;
    if (!file) return;
    this.file = undefined;
    const durationMs = file.lastTs - file.startTs;
    file.writer.write(this.held(file));
    this.closingWriters.add(file.writer);
    const done = file.writer
      .finish(file.muxer.durationPatch?.(durationMs))
      .then(() => this.completed(file, durationMs, note))
      .finally(() => {
        this.closing.delete(done);
        this.closingWriters.delete(file.writer);
      });
    this.closing.add(done);
  }

  private async completed(file: OpenFile, durationMs: number, note: string | null): Promise<void> {
    const { entry, writer } = file;
    if (writer.failed) return this.repairFailed(entry); // Reported by onWriteError.
    const endedAt = new Date(this.deps.now()).toISOString();
    const skipped = file.muxer.counters.skipped;
    const cannotCarry = `${skipped} frame${skipped === 1 ? '' : 's'} ${this.options.format} cannot carry (${CARRIES[this.options.format]}) or malformed`;
    if (writer.bytesWritten === 0) {
      // Nothing reached the file (MP3 into mp4, say): no file to play, so not `ready`.
      const error = `nothing recorded: ${cannotCarry}`;
      this.deps.index.update(entry.id, { status: 'failed', endedAt, durationMs: 0, bytes: 0, error });
      this.deps.logger.warn({ recordingId: entry.id, file: entry.file, err: error }, 'recording failed');
      this.deps.events({ type: 'recording.failed', ...this.eventBase(entry), error, durationMs: 0, bytes: 0 });
      return;
    }
    if (skipped > 0) {
      note = note === null ? `left out: ${cannotCarry}` : `${note}; left out: ${cannotCarry}`;
      this.deps.logger.warn({ recordingId: entry.id, file: entry.file, skipped }, `recording left out ${cannotCarry}`);
    }
    this.deps.index.update(entry.id, { status: 'ready', endedAt, durationMs, bytes: writer.bytesWritten, note });
    this.deps.logger.info({ recordingId: entry.id, file: entry.file, durationMs, bytes: writer.bytesWritten, note }, 'recording ready');
    this.deps.events({ type: 'recording.ready', ...this.eventBase(entry), durationMs, bytes: writer.bytesWritten, note });
  }

  /** A failed write ends the whole session: the disk is full or broken, and the next file would fail too. */
  private onWriteError(id: string, err: Error): void {
    const entry = this.deps.index.get(id);
    if (!entry) return;
    const file = this.file?.entry.id === id ? this.file : undefined;
    const durationMs = file ? file.lastTs - file.startTs : entry.durationMs;
    const bytes = file?.writer.bytesWritten ?? entry.bytes;
    const error = describeWriteError(err);
    this.deps.index.update(id, { status: 'failed', endedAt: new Date(this.deps.now()).toISOString(), durationMs, bytes, error });
    this.deps.logger.error({ recordingId: id, file: entry.file, err: error }, 'recording failed');
    this.deps.events({ type: 'recording.failed', ...this.eventBase(entry), error, durationMs, bytes });
    if (file) {
      this.file = undefined;
      const done = file.writer
        .finish()
        .then(() => this.repairFailed(entry))
        .finally(() => this.closing.delete(done));
      this.closing.add(done);
    }
    if (!this.stopped) {
      this.stopped = true;
      this.deps.failed(err);
    }
  }

  /** A failed write may have left a torn end: cut it so the file plays up to the failure. */
  private async repairFailed(entry: RecordingEntry): Promise<void> {
    const { fs, index } = this.deps;
    const path = index.path(entry);
    try {
      const size = await fs.size(path);
      if (size !== undefined) index.update(entry.id, { bytes: await repairTornEnd(fs, path, entry.format, size) });
    } catch (err) {
      this.deps.logger.warn({ recordingId: entry.id, err: (err as Error).message }, 'cannot repair the end of a failed recording');
    }
  }

  private eventBase(entry: RecordingEntry): { recordingId: string; flowId: string | null; jobId: string | null; file: string; format: string } {
    return { recordingId: entry.id, flowId: entry.flowId, jobId: entry.jobId, file: entry.file, format: entry.format };
  }
}

function videoCodecOf(header: Buffer): string | undefined {
  try {
    return parseVideoTag(header).codec;
  } catch {
    return undefined;
  }
}

export function describeWriteError(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC') return 'disk full (ENOSPC): no space left on the recordings file system';
  if (code === 'EDQUOT') return 'disk quota exceeded (EDQUOT)';
  if (code === 'EGONE') return err.message;
  // Node's own messages already start with the code ("EACCES: permission denied, ...").
  return code && !err.message.startsWith(`${code}:`) ? `${code}: ${err.message}` : err.message;
}
