import type { Logger } from 'pino';
import type { RecordingEvent } from '../core/flow-events.js';
import { OutputFeed } from '../core/output-feed.js';
import type { StreamHub } from '../core/stream-hub.js';
import { Backoff } from '../lib/backoff.js';
import type { Clock } from '../lib/clock.js';
import type { RecordingFileSystem } from './recording-fs.js';
import type { RecordingFormat, RecordingIndex } from './recording-index.js';
import { describeWriteError, RecordingSession } from './recording-session.js';

export interface RecorderSettings {
  format: RecordingFormat;
  segmentSeconds: number;
  timeoutSeconds: number;
  path: string;
}

/**
 * `idle`: no source. `recording`: writing. `waiting_for_reconnect`: the source left and
 * the file stays open for timeoutSeconds. `failed`: a write failed (tried again after a
 * while if the source is still live, and when the next source comes). `low_disk_space`:
 * below storage.minFreeSpace, nothing is written.
 */
export type RecorderState = 'idle' | 'recording' | 'waiting_for_reconnect' | 'failed' | 'low_disk_space';

/**
 * After a failed write, with the source still live, a new session (a new file) is tried
 * after this, doubling per failure in a row up to RETRY_MAX_MS: a disk that was full,
 * read-only or gone for a while must not cost a 24/7 stream its recording for good.
 */
export const RETRY_INITIAL_MS = 10_000;
export const RETRY_MAX_MS = 300_000;

const ALLOWED: Record<RecorderState, readonly RecorderState[]> = {
  idle: ['recording', 'low_disk_space'],
  recording: ['waiting_for_reconnect', 'idle', 'failed', 'low_disk_space'],
  waiting_for_reconnect: ['recording', 'idle', 'failed', 'low_disk_space'],
  failed: ['idle', 'recording', 'low_disk_space'],
  low_disk_space: ['idle', 'recording'],
};

/** Whether the recordings' file system has room; shared by every recorder of the daemon. */
export interface SpaceGuard {
  readonly ok: boolean;
  /** What to tell operators while it is not ok. */
  readonly message: string;
  watch(listener: (ok: boolean) => void): () => void;
}

export interface RecorderDeps {
  index: RecordingIndex;
  fs: RecordingFileSystem;
  clock: Clock;
  space: SpaceGuard;
  events(event: RecordingEvent): void;
  logger: Logger;
  /** Bytes a file may have waiting for the disk before frames are dropped to the next keyframe. */
  maxBacklogBytes: number;
}

export interface RecorderOwner {
  flowId: string | null;
  jobId: string | null;
  nameInPath: string;
}

export interface RecorderReport {
  state: RecorderState;
  format: RecordingFormat;
  /** The file being written, if any. */
  recordingId: string | null;
  file: string | null;
  lastError: string | null;
  /** After a failure: when a new file is tried (ISO 8601), if the source is still live then. */
  nextAttemptAt: string | null;
  /** Recording sessions started, and frames dropped because the disk fell behind. */
  sessions: number;
  framesDropped: number;
}

/** Hooks for a record job, which follows its recorder's life. */
export interface RecorderListener {
  stateChanged?(state: RecorderState, error: string | null): void;
  /** A file was started (its id). */
  recordingStarted?(recordingId: string): void;
}

/**
 * Records a hub automatically: a session starts when a source goes live and ends
 * `timeoutSeconds` after it left, unless a source returns first (then the same file
 * continues). It is a hub reader like any output, with a bounded backlog, so a slow or
 * broken disk costs the recording frames, never the live path.
 */
export class Recorder {
  private readonly feed: OutputFeed;
  private session: RecordingSession | undefined;
  private timer: unknown;
  private state: RecorderState = 'idle';
  private lastError: string | null = null;
  private sessions = 0;
  private closed = false;
  private unwatchSpace: (() => void) | undefined;
  /** The wait before the retry after a failed session: doubles per failure in a row. */
  private readonly retryBackoff = new Backoff({ initialDelayMs: RETRY_INITIAL_MS, maxDelayMs: RETRY_MAX_MS, jitter: 0 });
  private sessionStartedAt = 0;
  private retryTimer: unknown;
  private retryAt: number | undefined;
  /** Sessions finishing (their files closing); close() waits for them. */
  private readonly finishing = new Set<Promise<void>>();

  constructor(
    private readonly owner: RecorderOwner,
    readonly settings: RecorderSettings,
    private readonly hub: StreamHub,
    private readonly deps: RecorderDeps,
    private readonly listener: RecorderListener = {},
    /** Called once every file of this recorder is closed after close(). */
    private readonly onClosed: () => void = () => undefined,
  ) {
    this.feed = new OutputFeed(hub, deps.maxBacklogBytes, {
      sourceLive: () => this.onSourceLive(),
      sourceGone: () => this.onSourceGone(),
      hubClosed: () => void this.endSession(null),
    });
  }

  start(): void {
    if (this.closed) return;
    this.unwatchSpace = this.deps.space.watch((ok) => this.onSpace(ok));
    this.feed.start();
  }

  /** Stops recording: the open file is completed. Resolves when every file is closed. */
  async close(reason: string): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.unwatchSpace?.();
      this.deps.clock.clearTimeout(this.timer);
      this.cancelRetry();
      this.feed.stop();
      void this.endSession(null);
      this.deps.logger.debug({ reason }, 'recorder closed');
    }
    while (this.finishing.size > 0) await Promise.all([...this.finishing]);
    this.onClosed();
  }

  report(): RecorderReport {
    const current = this.session?.current;
    return {
      state: this.state,
      format: this.settings.format,
      recordingId: current?.id ?? null,
      file: current?.file ?? null,
      lastError: this.lastError,
      nextAttemptAt: this.retryAt === undefined ? null : new Date(this.retryAt).toISOString(),
      sessions: this.sessions,
      framesDropped: this.feed.dropped.frames,
    };
  }

  private onSourceLive(): void {
    if (this.closed) return;
    this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
    // A new source tries at once, whatever failed before.
    this.cancelRetry();
    this.retryBackoff.reset();
    if (this.session) {
      this.session.sourceRestarted();
      this.setState('recording');
      return;
    }
    this.startSession();
  }

  private onSourceGone(): void {
    const session = this.session;
    // A failed recording keeps saying so (and why) until the next source tries again.
    if (!session) return;
    session.flush();
    this.setState('waiting_for_reconnect');
    const timeoutMs = this.settings.timeoutSeconds * 1000;
    this.timer = this.deps.clock.setTimeout(() => void this.endSession(null), timeoutMs);
  }

  private startSession(): void {
    if (!this.deps.space.ok) {
      this.lastError = this.deps.space.message;
      this.setState('low_disk_space');
      return;
    }
    const { flowId, jobId, nameInPath } = this.owner;
    const session = new RecordingSession(
      { flowId, jobId, nameInPath, format: this.settings.format, segmentMs: this.settings.segmentSeconds * 1000, pathTemplate: this.settings.path },
      {
        index: this.deps.index,
        fs: this.deps.fs,
        now: () => this.deps.clock.now(),
        events: (event) => {
          if (event.type === 'recording.started') this.listener.recordingStarted?.(event.recordingId);
          this.deps.events(event);
        },
        logger: this.deps.logger,
        failed: (err) => this.onSessionFailed(session, err),
      },
    );
    this.session = session;
    this.sessions += 1;
    this.sessionStartedAt = this.deps.clock.now();
    this.lastError = null;
    this.setState('recording');
    this.feed.attach(session);
  }

  /** Completes the session's files; `note` is recorded on the last one when it ended early. */
  private endSession(note: string | null): Promise<void> {
    this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const session = this.session;
    if (!session) return Promise.resolve();
    this.session = undefined;
    this.feed.detachSink();
    const done = session.finish(note).finally(() => this.finishing.delete(done));
    // Registered before the state changes: a listener that closes the recorder on idle must wait for these files.
    this.finishing.add(done);
    if (this.state === 'recording' || this.state === 'waiting_for_reconnect') this.setState('idle');
    return done;
  }

  private onSessionFailed(session: RecordingSession, err: Error): void {
    if (this.session !== session) return;
    this.session = undefined;
    this.feed.detachSink();
    this.deps.clock.clearTimeout(this.timer);
    this.lastError = describeWriteError(err);
    const done = session.finish().finally(() => this.finishing.delete(done));
    this.finishing.add(done);
    this.setState('failed');
    if (this.closed) return;
    // A session that ran a good while before failing starts the count again.
    if (this.deps.clock.now() - this.sessionStartedAt >= RETRY_MAX_MS) this.retryBackoff.reset();
    const delay = this.retryBackoff.next();
    this.retryAt = this.deps.clock.now() + delay;
    this.retryTimer = this.deps.clock.setTimeout(() => {
      this.retryTimer = undefined;
      this.retryAt = undefined;
      if (this.closed || this.state !== 'failed' || this.session || !this.hub.live) return;
      this.deps.logger.info({ afterMs: delay }, 'recording: trying a new file after the failure');
      this.startSession();
    }, delay);
  }

  private cancelRetry(): void {
    if (this.retryTimer !== undefined) this.deps.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.retryAt = undefined;
  }

  private onSpace(ok: boolean): void {
    if (this.closed) return;
    if (!ok) {
      // The state first: listeners (a record job) must see why the session ends, not an idle recorder.
      this.lastError = this.deps.space.message;
      this.setState('low_disk_space');
      if (this.session) void this.endSession('stopped early: free space fell below storage.minFreeSpace');
    } else if (ok && this.state === 'low_disk_space') {
      this.lastError = null;
      this.setState('idle');
      if (this.hub.live) this.startSession();
    }
  }

  private setState(next: RecorderState): void {
    if (next === this.state) return;
    if (!ALLOWED[this.state].includes(next)) {
      this.deps.logger.error({ from: this.state, to: next }, 'recorder state transition not allowed; forcing it');
    }
    this.state = next;
    this.listener.stateChanged?.(next, this.lastError);
  }
}
