import type { ConnectionStatus } from './connection-status.js';

/**
 * What happens to flows, for webhooks (and anything else that listens). Emitted
 * synchronously by the core; a listener must only queue (it runs on the media path).
 */
export type FlowEvent =
  | { type: 'input.connected'; flowId: string; input: string; remoteAddress: string }
  | { type: 'input.disconnected'; flowId: string; input: string; reason: string }
  | { type: 'input.bitrate_exceeded'; flowId: string; input: string; measuredBps: number; allowedBps: number; action: 'disconnect' | 'warn' }
  | { type: 'input.status'; flowId: string; input: string; status: ConnectionStatus; previous: ConnectionStatus; lastError: string | null }
  | { type: 'output.status'; flowId: string; output: string; status: ConnectionStatus; previous: ConnectionStatus; lastError: string | null }
  | { type: 'flow.created' | 'flow.updated' | 'flow.deleted'; flowId: string }
  | { type: 'input.failover' | 'input.revert'; flowId: string; from: string | null; to: string; reason: 'stalled' | 'disconnected' | 'revert' }
  | RecordingEvent
  | { type: 'record_job.status'; jobId: string; name: string; status: RecordJobStatus; previous: RecordJobStatus; error: string | null }
  | TaskEvent;

/**
 * A task's life: `scheduled` until its start time, `running` while ffmpeg pushes,
 * `retrying` between failed attempts, then `completed` (end time reached, or a files
 * task that played everything), `failed` (out of retries) or `stopped` (removed).
 */
export type TaskStatus = 'scheduled' | 'running' | 'retrying' | 'completed' | 'failed' | 'stopped';

export type TaskEvent =
  | { type: 'task.status'; taskId: string; status: TaskStatus; previous: TaskStatus; error: string | null; attempt: number }
  | { type: 'task.exit'; taskId: string; attempt: number; code: number | null; signal: string | null; stopped: boolean; log: string[] };

/** Where a recording comes from: a flow (flowId) or a record job (jobId); the other is null. */
interface RecordingEventBase {
  recordingId: string;
  flowId: string | null;
  jobId: string | null;
  /** Relative to the recordings directory. */
  file: string;
  format: string;
}

export type RecordingEvent =
  | ({ type: 'recording.started' } & RecordingEventBase)
  | ({ type: 'recording.ready'; durationMs: number; bytes: number; note: string | null } & RecordingEventBase)
  | ({ type: 'recording.failed'; error: string; durationMs: number; bytes: number } & RecordingEventBase);

/** A record job's life: waiting for its stream, recording it, then one of the three ends. */
export type RecordJobStatus = 'waiting' | 'recording' | 'completed' | 'failed' | 'stopped';

export type FlowEventType = FlowEvent['type'];

export const FLOW_EVENT_TYPES: readonly FlowEventType[] = [
  'input.connected',
  'input.disconnected',
  'input.bitrate_exceeded',
  'input.status',
  'output.status',
  'input.failover',
  'input.revert',
  'flow.created',
  'flow.updated',
  'flow.deleted',
  'recording.started',
  'recording.ready',
  'recording.failed',
  'record_job.status',
  'task.status',
  'task.exit',
];

export type FlowEventSink = (event: FlowEvent) => void;

export const ignoreEvents: FlowEventSink = () => undefined;

/** A supervised connection's status change, as its owner reports it. */
export type StatusListener = (status: ConnectionStatus, previous: ConnectionStatus, lastError: string | undefined) => void;
