import type { Registry } from 'prom-client';
import type { EditOutcome } from '../app.js';
import type { ConfigEdit } from '../config/edit.js';
import type { ConfigIssue } from '../config/load.js';
import type { Flow } from '../core/flow.js';
import type { ListenerReport } from '../policy/connection-admission.js';
import type { RecordJobs } from '../recording/record-jobs.js';
import type { RecordingService } from '../recording/recording-service.js';
import type { TaskScheduler } from '../tasks/task-scheduler.js';
import type { PublicEndpoints } from './flow-views.js';
import type { TokenVerifier } from './tokens.js';

/** The last config load or reload, as GET /v1/config/status reports it. */
export interface ConfigStatus {
  ok: boolean;
  file: string;
  /** When the running config was accepted. */
  appliedAt: string;
  /** When the file was last read (accepted or not). */
  checkedAt: string;
  /** Why the last attempt was refused (file, line, key, message); empty when it was accepted. */
  issues: ConfigIssue[];
}

/** What the routes may see of the daemon: read access to running state, nothing else. */
export interface ApiContext {
  flows(): Flow[];
  flow(id: string): Flow | undefined;
  /** The flow's `meta` from the config. */
  meta(flowId: string): Record<string, string>;
  endpoints(): PublicEndpoints;
  /** The RTMP(S) and shared SRT listeners: open connections, limits, refusals. */
  listeners(): ListenerReport[];
  configStatus(): ConfigStatus;
  tokens(): TokenVerifier;
  /** api.allow / api.deny: whether a client address may use the API at all. */
  admits(address: string): boolean;
  /** Whether GET /metrics needs a read token. */
  metricsAuth(): boolean;
  metrics: Registry;
  recordings(): RecordingService;
  recordJobs(): RecordJobs;
  tasks(): TaskScheduler;
  /** api.taskRequestsPerMinute */
  taskRequestsPerMinute(): number;
  /** Applies a change to the config file and then to the running daemon. */
  edit(edit: ConfigEdit): Promise<EditOutcome>;
  now(): number;
  startedAt: number;
  /** The daemon's version, for the OpenAPI document. */
  version: string;
}
