import type { Logger } from 'pino';
import type { ClientTlsConfig } from '../config/schema-restream.js';
import type { RecordJobStatus } from '../core/flow-events.js';
import type { FlowPullInput } from '../core/flow-parts.js';
import { StreamHub } from '../core/stream-hub.js';
import type { Clock } from '../lib/clock.js';
import type { Recorder, RecorderListener } from './recorder.js';
import type { RecordingFormat } from './recording-index.js';

/** A record job as it is kept (jobs.json) and shown (GET /v1/record-jobs). */
export interface RecordJobRecord {
  id: string;
  name: string;
  url: string;
  format: RecordingFormat;
  notifyUrl: string | null;
  notifySecret: string | null;
  waitSeconds: number;
  /** How an rtmps:// URL's certificate is checked; absent: against the system CAs. */
  tls?: ClientTlsConfig;
  status: RecordJobStatus;
  error: string | null;
  createdAt: string;
  /** When media first arrived, and when the job ended. */
  startedAt: string | null;
  endedAt: string | null;
  /** The recordings this job made. */
  recordings: string[];
}

const ALLOWED: Record<RecordJobStatus, readonly RecordJobStatus[]> = {
  waiting: ['recording', 'failed', 'stopped'],
  recording: ['completed', 'failed', 'stopped'],
  completed: [],
  failed: [],
  stopped: [],
};

export function isActive(status: RecordJobStatus): boolean {
  return status === 'waiting' || status === 'recording';
}

export interface RecordJobParts {
  /** The pull of the job's URL into `hub` (an rtmp-pull input, reconnecting on its own). */
  input(hub: StreamHub): FlowPullInput;
  recorder(hub: StreamHub, listener: RecorderListener): Recorder;
}

/**
 * One record job running: pulls its URL into a private hub and records that hub. It
 * fails if no media arrives within waitSeconds, completes when the stream has been gone
 * for the recorder's timeout, and can be stopped. Each status change is reported once.
 */
export class RecordJob {
  private readonly hub = new StreamHub();
  private input: FlowPullInput | undefined;
  private recorder: Recorder | undefined;
  private waitTimer: unknown;
  private ended: Promise<void> | undefined;
  /**
   * Set once the job is ending (or the daemon suspends it): tearing down makes the
   * recorder go idle, which must not read as the stream having ended by itself.
   */
  private ending = false;

  constructor(
    readonly record: RecordJobRecord,
    private readonly parts: RecordJobParts,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly changed: (record: RecordJobRecord, previous: RecordJobStatus) => void,
  ) {}

  start(): void {
    this.recorder = this.parts.recorder(this.hub, {
      stateChanged: (state, error) => {
        if (this.ending) return;
        if (state === 'recording') this.transition('recording', null);
        else if (state === 'idle' && this.record.status === 'recording') void this.end('completed', null);
        else if (state === 'failed' || state === 'low_disk_space') void this.end('failed', error ?? state);
      },
      recordingStarted: (id) => {
        if (!this.record.recordings.includes(id)) this.record.recordings.push(id);
      },
    });
    this.recorder.start();
    this.input = this.parts.input(this.hub);
    this.input.start();
    this.waitTimer = this.clock.setTimeout(() => {
      if (this.record.status !== 'waiting') return;
      // Why, when the pull knows: a refused key, an untrusted certificate, a dead host.
      const lastError = this.input?.report().lastError;
      void this.end('failed', `no stream arrived within ${this.record.waitSeconds} s${lastError ? `; last error: ${lastError}` : ''}`);
    }, this.record.waitSeconds * 1000);
  }

  /** Stops an active job (its file is completed). */
  stop(): Promise<void> {
    return this.end('stopped', null);
  }

  /** Daemon shutdown: the job stays active in jobs.json and resumes at the next start. */
  async suspend(): Promise<void> {
    this.ending = true;
    await this.teardown('daemon stopping');
  }

  private end(status: 'completed' | 'failed' | 'stopped', error: string | null): Promise<void> {
    if (!isActive(this.record.status) || this.ending) return this.ended ?? Promise.resolve();
    this.ending = true;
    this.ended = (async () => {
      await this.teardown(status);
      this.record.endedAt = new Date(this.clock.now()).toISOString();
      this.transition(status, error);
    })();
    return this.ended;
  }

  private async teardown(reason: string): Promise<void> {
    this.clock.clearTimeout(this.waitTimer);
    this.input?.close(reason);
    this.input = undefined;
    this.hub.close(reason);
    await this.recorder?.close(reason);
  }

  private transition(next: RecordJobStatus, error: string | null): void {
    const previous = this.record.status;
    if (next === previous) return;
    if (!ALLOWED[previous].includes(next)) {
      this.logger.error({ from: previous, to: next }, 'record job transition not allowed; ignored');
      return;
    }
    this.record.status = next;
    this.record.error = error;
    if (next === 'recording') this.record.startedAt ??= new Date(this.clock.now()).toISOString();
    this.logger.info({ jobId: this.record.id, status: next, previous, error }, 'record job status');
    this.changed(this.record, previous);
  }
}
