import { join } from 'node:path';
import type { Logger } from 'pino';
import type { RecordingEvent } from '../core/flow-events.js';
import type { StreamHub } from '../core/stream-hub.js';
import type { Clock } from '../lib/clock.js';
import { Recorder, type RecorderListener, type RecorderOwner, type RecorderSettings } from './recorder.js';
import type { RecordingFileSystem } from './recording-fs.js';
import { RecordingIndex, type RecordingEntry } from './recording-index.js';
import { expiredRecordings } from './retention.js';
import { FreeSpaceGuard } from './space-guard.js';

/** How often old recordings are looked for (and once at start). */
export const RETENTION_INTERVAL_MS = 60 * 60 * 1000;

export interface RecordingServiceOptions {
  /** storage.dir; recordings go to its `recordings` directory. */
  storageDir: string;
  minFreeBytes: number;
  maxWriteBacklogBytes: number;
}

export interface RecordingServiceDeps {
  fs: RecordingFileSystem;
  clock: Clock;
  events(event: RecordingEvent): void;
  logger: Logger;
}

/** Days to keep a recording (undefined: keep it). */
export type RetentionPolicy = (entry: RecordingEntry) => number | undefined;

export type DeleteResult = { ok: true } | { ok: false; code: 'not_found' | 'conflict'; message: string };

/**
 * The daemon's recordings: the index, free-space watching, retention, and the recorders
 * that flows and record jobs run. One per daemon.
 */
export class RecordingService {
  private retentionTimer: unknown;
  /** Every recorder made, until it closed: close() completes their files. */
  private readonly recorders = new Set<Recorder>();
  private closed = false;
  private constructor(
    readonly index: RecordingIndex,
    readonly space: FreeSpaceGuard,
    private options: RecordingServiceOptions,
    private readonly deps: RecordingServiceDeps,
    /** Days to keep a recording, per entry (from its flow's or the jobs' config). */
    private retentionPolicy: RetentionPolicy,
  ) {}

  static async open(options: RecordingServiceOptions, deps: RecordingServiceDeps, retention: RetentionPolicy = () => undefined): Promise<RecordingService> {
    const dir = join(options.storageDir, 'recordings');
    const index = await RecordingIndex.load(dir, deps.fs, deps.logger, deps.clock);
    const space = new FreeSpaceGuard(dir, options.minFreeBytes, deps.fs, deps.clock, deps.logger);
    await space.start();
    return new RecordingService(index, space, options, deps, retention);
  }

  /** Starts the retention schedule (a sweep now, then every RETENTION_INTERVAL_MS). */
  startRetention(): void {
    const run = (): void => {
      if (this.closed) return;
      void this.sweep().finally(() => {
        if (!this.closed) this.retentionTimer = this.deps.clock.setTimeout(run, RETENTION_INTERVAL_MS);
      });
    };
    run();
  }

  /** Applies changed storage settings (the directory itself only changes at restart). */
  configure(options: RecordingServiceOptions, retention: RetentionPolicy): void {
    if (options.storageDir !== this.options.storageDir) {
      this.deps.logger.warn('storage.dir changed; it takes effect at the next restart');
    }
    if (options.minFreeBytes !== this.options.minFreeBytes) this.space.setMinFreeBytes(options.minFreeBytes);
    this.options = { ...options, storageDir: this.options.storageDir };
    this.retentionPolicy = retention;
  }

  createRecorder(owner: RecorderOwner, settings: RecorderSettings, hub: StreamHub, logger: Logger, listener?: RecorderListener): Recorder {
    const recorder = new Recorder(
      owner,
      settings,
      hub,
      { index: this.index, fs: this.deps.fs, clock: this.deps.clock, space: this.space, events: this.deps.events, logger, maxBacklogBytes: this.options.maxWriteBacklogBytes },
      listener,
      () => this.recorders.delete(recorder),
    );
    this.recorders.add(recorder);
    return recorder;
  }

  /** Deletes recordings past their retention; returns what was deleted. */
  async sweep(): Promise<RecordingEntry[]> {
    const expired = expiredRecordings(this.index.list(), this.deps.clock.now(), this.retentionPolicy);
    const deleted: RecordingEntry[] = [];
    for (const entry of expired) {
      try {
        await this.deps.fs.remove(this.index.path(entry));
        this.index.remove(entry.id);
        deleted.push(entry);
      } catch (err) {
        this.deps.logger.error({ recordingId: entry.id, file: entry.file, err: (err as Error).message }, 'cannot delete an expired recording');
      }
    }
    if (deleted.length > 0) this.deps.logger.info({ deleted: deleted.length, files: deleted.map((e) => e.file) }, 'old recordings deleted (retention)');
    return deleted;
  }

  /** Deletes one recording's file and entry; a file still being written cannot be deleted. */
  async delete(id: string): Promise<DeleteResult> {
    const entry = this.index.get(id);
    if (!entry) return { ok: false, code: 'not_found', message: `no recording with id "${id}"` };
    if (entry.status === 'recording') {
      return { ok: false, code: 'conflict', message: `recording "${id}" is still being written; stop its flow's recording or job first` };
    }
    await this.deps.fs.remove(this.index.path(entry));
    this.index.remove(id);
    this.deps.logger.info({ recordingId: id, file: entry.file }, 'recording deleted');
    return { ok: true };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.deps.clock.clearTimeout(this.retentionTimer);
    this.space.close();
    await Promise.all([...this.recorders].map((r) => r.close('shutdown')));
    await this.index.close();
  }
}
