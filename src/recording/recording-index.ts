import { readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { LatestFileWriter } from '../lib/latest-file-writer.js';
import { systemClock, type Clock } from '../lib/clock.js';
import type { RecordingFileSystem } from './recording-fs.js';
import { repairTornEnd } from './repair.js';

export type RecordingFormat = 'mp4' | 'mpegts' | 'flv';
export type RecordingStatus = 'recording' | 'ready' | 'failed';

export const RECORDING_EXTENSIONS: Record<RecordingFormat, string> = { mp4: 'mp4', mpegts: 'ts', flv: 'flv' };

/** One file: what GET /v1/recordings shows and what retention deletes. */
export interface RecordingEntry {
  id: string;
  /** The flow recorded, or null for a record job's file. */
  flowId: string | null;
  jobId: string | null;
  /** Files of one recording session (a publisher and its reconnects within timeoutSeconds) share it. */
  sessionId: string;
  /** 0 for a session's first file, then 1, 2, ... (segmentSeconds, or a codec change). */
  segment: number;
  format: RecordingFormat;
  /** Relative to the recordings directory. */
  file: string;
  status: RecordingStatus;
  startedAt: string;
  endedAt: string | null;
  /** Media time in the file. */
  durationMs: number;
  bytes: number;
  /** Why the file failed (status failed). */
  error: string | null;
  /** Why a ready file ended early (low disk space), or null. */
  note: string | null;
  /** The daemon stopped without closing the file (a crash, kill -9): it plays up to its last write. */
  interrupted: boolean;
}

const INDEX_VERSION = 1;
/**
 * Progress (size, duration) is written at most this often; status changes at once. After
 * a crash an interrupted file's duration is therefore up to this far behind.
 */
const PERSIST_DELAY_MS = 10_000;

/**
 * Every recording file the daemon made, kept in `<recordings>/index.json` so the list
 * survives restarts. Written atomically, and soon after each change, so after a crash
 * the index is at most a couple of seconds behind the files; `load` reconciles it with
 * what is on disk.
 */
export class RecordingIndex {
  private readonly entries = new Map<string, RecordingEntry>();
  /** Each entry's JSON, kept until it changes: the index is rewritten often and may hold thousands of files. */
  private readonly serialized = new Map<string, string>();
  private timer: unknown;
  private readonly writer: LatestFileWriter;
  private closed = false;

  private constructor(
    readonly dir: string,
    logger: Logger,
    private readonly clock: Clock,
  ) {
    this.writer = new LatestFileWriter(
      join(dir, 'index.json'),
      0o644,
      () => `{"version":${INDEX_VERSION},"recordings":[\n${this.list().map((e) => this.json(e)).join(',\n')}\n]}\n`,
      (err) => logger.error({ err: err.message, file: this.file }, 'cannot write the recording index'),
    );
  }

  get file(): string {
    return this.writer.path;
  }

  /**
   * Reads the index. Files that were being recorded when the daemon died become ready
   * (and interrupted) with their size on disk; entries whose file is gone are dropped.
   */
  static async load(dir: string, fs: RecordingFileSystem, logger: Logger, clock: Clock = systemClock): Promise<RecordingIndex> {
    const index = new RecordingIndex(dir, logger, clock);
    let stored: RecordingEntry[] = [];
    try {
      const parsed = JSON.parse(await readFile(index.file, 'utf8')) as { version?: number; recordings?: RecordingEntry[] };
      if (parsed.version !== INDEX_VERSION || !Array.isArray(parsed.recordings)) throw new Error(`not a version ${INDEX_VERSION} recording index`);
      stored = parsed.recordings;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') await setAside(index.file, err as Error, clock, logger);
    }
    let changed = false;
    for (const entry of stored) {
      const size = await fs.size(join(dir, entry.file));
      if (size === undefined) {
        changed = true;
        continue;
      }
      if (entry.status === 'recording') {
        changed = true;
        const ended = new Date(Date.parse(entry.startedAt) + entry.durationMs).toISOString();
        const bytes = await repairTornEnd(fs, join(dir, entry.file), entry.format, size).catch((err: Error) => {
          logger.error({ err: err.message, file: entry.file }, 'cannot repair an interrupted recording; it is listed as it is');
          return size;
        });
        index.entries.set(entry.id, { ...entry, status: 'ready', interrupted: true, bytes, endedAt: ended });
        logger.info({ recordingId: entry.id, file: entry.file, bytes, cutBytes: size - bytes }, 'recording interrupted by a stop without close; listed as ready');
      } else {
        index.entries.set(entry.id, entry);
      }
    }
    if (changed) await index.flush();
    return index;
  }

  path(entry: RecordingEntry): string {
    return join(this.dir, entry.file);
  }

  list(): RecordingEntry[] {
    return [...this.entries.values()];
  }

  get(id: string): RecordingEntry | undefined {
    return this.entries.get(id);
  }

  add(entry: RecordingEntry): void {
    this.entries.set(entry.id, entry);
    this.serialized.delete(entry.id);
    void this.flush();
  }

  /** Progress (size, duration) is persisted soon; a status change at once. */
  update(id: string, patch: Partial<RecordingEntry>): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.set(id, { ...entry, ...patch });
    this.serialized.delete(id);
    if (patch.status !== undefined) void this.flush();
    else this.flushSoon();
  }

  remove(id: string): void {
    this.serialized.delete(id);
    if (this.entries.delete(id)) void this.flush();
  }

  private json(entry: RecordingEntry): string {
    let text = this.serialized.get(entry.id);
    if (text === undefined) {
      text = JSON.stringify(entry);
      this.serialized.set(entry.id, text);
    }
    return text;
  }

  /** Waits for every pending write (shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush(true);
    this.writer.stop();
  }

  private flushSoon(): void {
    if (this.timer || this.closed) return;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, PERSIST_DELAY_MS);
  }

  /** Writes the index now (after a write in progress); the file always ends with the latest state. */
  flush(final = false): Promise<void> {
    if (this.closed && !final) return this.writer.settled();
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    return this.writer.write();
  }
}

/**
 * An index that cannot be read is moved aside, not overwritten by the new one: the list
 * of every earlier recording is in it, for an operator (or a later version) to recover.
 */
async function setAside(file: string, err: Error, clock: Clock, logger: Logger): Promise<void> {
  const aside = `${file}.unreadable-${new Date(clock.now()).toISOString().replace(/[:.]/g, '-')}`;
  try {
    await rename(file, aside);
    logger.error({ err: err.message, file, keptAs: aside }, 'recording index unreadable; kept aside, starting a new one');
  } catch (renameErr) {
    logger.error({ err: err.message, file, renameErr: (renameErr as Error).message }, 'recording index unreadable and cannot be moved aside; starting a new one');
  }
}
