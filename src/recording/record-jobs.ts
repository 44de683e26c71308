import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { rtmpPullInputSchema } from '../config/schema-restream.js';
import type { RecordJobsConfig, RtmpPullInputConfig } from '../config/schema.js';
import type { RecordJobRequest } from '../config/schema-recording.js';
import type { FlowEvent } from '../core/flow-events.js';
import type { FlowPullInput } from '../core/flow-parts.js';
import type { StreamHub } from '../core/stream-hub.js';
import type { Clock } from '../lib/clock.js';
import { LatestFileWriter } from '../lib/latest-file-writer.js';
import { isActive, RecordJob, type RecordJobRecord } from './record-job.js';
import type { RecordingService } from './recording-service.js';

/** Where a job's files go under the recordings directory ({flowId} is the job's id). */
const JOB_PATH_TEMPLATE = 'jobs/{flowId}/{flowId}_{date}_{time}';
/** Jobs record one continuous file per session; a long job is still cut daily. */
const JOB_SEGMENT_SECONDS = 86_400;

export interface Notifier {
  send(event: FlowEvent): void;
  close(): void;
}

export interface RecordJobsDeps {
  recordings: RecordingService;
  createInput(spec: RtmpPullInputConfig, hub: StreamHub, logger: Logger): FlowPullInput;
  notifier(url: string, secret: string): Notifier;
  /** Job status events go here (the webhooks) as well as to the job's notifyUrl. */
  events(event: FlowEvent): void;
  clock: Clock;
  logger: Logger;
}

export type CreateJobResult = { ok: true; job: RecordJobRecord } | { ok: false; code: 'limit_exceeded'; message: string };
export type RemoveJobResult = { ok: true; job: RecordJobRecord; removed: boolean } | { ok: false; code: 'not_found'; message: string };

/**
 * One-off recordings of an RTMP URL. Jobs are kept in `<recordings>/jobs.json`: the
 * list survives restarts, and a job that was waiting or recording when the daemon stopped
 * starts again (waiting anew) when it comes back.
 */
export class RecordJobs {
  private readonly records = new Map<string, RecordJobRecord>();
  private readonly running = new Map<string, RecordJob>();
  private readonly notifiers = new Map<string, Notifier>();
  private readonly writer: LatestFileWriter;
  private closed = false;

  private constructor(
    private readonly file: string,
    private config: RecordJobsConfig,
    private readonly deps: RecordJobsDeps,
  ) {
    // 0600: the file holds notify secrets and source URLs with their keys.
    this.writer = new LatestFileWriter(file, 0o600, () => `${JSON.stringify({ version: 1, jobs: this.list() }, null, 1)}\n`, (err) =>
      deps.logger.error({ err: err.message, file }, 'cannot write the record jobs file'),
    );
  }

  static async load(config: RecordJobsConfig, deps: RecordJobsDeps): Promise<RecordJobs> {
    const jobs = new RecordJobs(join(deps.recordings.index.dir, 'jobs.json'), config, deps);
    try {
      const stored = JSON.parse(await readFile(jobs.file, 'utf8')) as { jobs?: RecordJobRecord[] };
      for (const record of stored.jobs ?? []) jobs.records.set(record.id, record);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') deps.logger.error({ err: (err as Error).message, file: jobs.file }, 'record jobs file unreadable; starting with no jobs');
    }
    return jobs;
  }

  /** Starts the jobs that were active when the daemon last stopped. */
  resume(): void {
    for (const record of this.records.values()) {
      if (!isActive(record.status)) continue;
      record.status = 'waiting';
      this.deps.logger.info({ jobId: record.id }, 'record job resumed after a restart');
      this.run(record);
    }
  }

  configure(config: RecordJobsConfig): void {
    this.config = config;
  }

  list(): RecordJobRecord[] {
    return [...this.records.values()];
  }

  get(id: string): RecordJobRecord | undefined {
    return this.records.get(id);
  }

  create(request: RecordJobRequest): CreateJobResult {
    const active = this.list().filter((r) => isActive(r.status)).length;
    if (active >= this.config.maxActive) {
      return { ok: false, code: 'limit_exceeded', message: `${active} record jobs are active, the limit is ${this.config.maxActive} (recordJobs.maxActive)` };
    }
    const record: RecordJobRecord = {
      id: `job_${randomBytes(8).toString('hex')}`,
      name: request.name,
      url: request.url,
      format: request.format,
      notifyUrl: request.notifyUrl ?? null,
      notifySecret: request.notifyUrl ? (request.notifySecret ?? randomBytes(24).toString('base64url')) : null,
      waitSeconds: request.waitSeconds ?? this.config.waitSeconds,
      ...(request.tls && { tls: request.tls }),
      status: 'waiting',
      error: null,
      createdAt: new Date(this.deps.clock.now()).toISOString(),
      startedAt: null,
      endedAt: null,
      recordings: [],
    };
    this.records.set(record.id, record);
    this.forgetOldFinished();
    this.persist();
    this.deps.logger.info({ jobId: record.id, name: record.name, format: record.format }, 'record job created');
    this.run(record);
    return { ok: true, job: record };
  }

  /** Stops an active job (it stays listed as stopped); removes a finished one from the list. */
  async remove(id: string): Promise<RemoveJobResult> {
    const record = this.records.get(id);
    if (!record) return { ok: false, code: 'not_found', message: `no record job with id "${id}"` };
    const job = this.running.get(id);
    if (job) {
      await job.stop();
      return { ok: true, job: record, removed: false };
    }
    this.records.delete(id);
    this.persist();
    return { ok: true, job: record, removed: true };
  }

  /** Recording events of a job's files go to its notifyUrl too. */
  route(event: FlowEvent): void {
    if (!('jobId' in event) || event.jobId === null) return;
    this.notifiers.get(event.jobId)?.send(event);
  }

  /** Daemon shutdown: running jobs are suspended (they resume at the next start). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.running.values()].map((job) => job.suspend()));
    this.running.clear();
    await this.writer.write();
    this.writer.stop();
    for (const notifier of this.notifiers.values()) notifier.close();
  }

  private run(record: RecordJobRecord): void {
    const logger = this.deps.logger.child({ jobId: record.id });
    if (record.notifyUrl && record.notifySecret) this.notifiers.set(record.id, this.deps.notifier(record.notifyUrl, record.notifySecret));
    const spec = rtmpPullInputSchema.parse({ name: 'source', type: 'rtmp-pull', url: record.url, ...(record.tls && { tls: record.tls }) });
    const job = new RecordJob(
      record,
      {
        input: (hub) => this.deps.createInput(spec, hub, logger),
        recorder: (hub, listener) =>
          this.deps.recordings.createRecorder(
            { flowId: null, jobId: record.id, nameInPath: record.id },
            { format: record.format, segmentSeconds: JOB_SEGMENT_SECONDS, timeoutSeconds: this.config.timeoutSeconds, path: JOB_PATH_TEMPLATE },
            hub,
            logger,
            listener,
          ),
      },
      this.deps.clock,
      logger,
      (changed, previous) => this.onStatus(changed, previous),
    );
    this.running.set(record.id, job);
    job.start();
  }

  private onStatus(record: RecordJobRecord, previous: RecordJobRecord['status']): void {
    const event: FlowEvent = { type: 'record_job.status', jobId: record.id, name: record.name, status: record.status, previous, error: record.error };
    this.deps.events(event);
    this.notifiers.get(record.id)?.send(event);
    if (!isActive(record.status)) {
      this.running.delete(record.id);
      // The notifier finishes sending what it has queued; it is not needed after that.
      this.notifiers.delete(record.id);
    }
    if (!this.closed) this.persist();
  }

  /** Finished jobs beyond recordJobs.keepFinished are forgotten, oldest first (their files stay). */
  private forgetOldFinished(): void {
    const finished = this.list().filter((r) => !isActive(r.status));
    for (const record of finished.slice(0, Math.max(0, finished.length - this.config.keepFinished))) this.records.delete(record.id);
  }

  private persist(): void {
    void this.writer.write();
  }
}
