import type { Logger } from 'pino';
import type { OutputConfig, RecordingConfig } from '../config/schema.js';
import type { ActiveInputSpec, Flow, SrtListenerInputSpec } from './flow.js';
import type { ConnectionCounters, ConnectionStatus } from './connection-status.js';
import type { StatusListener } from './flow-events.js';
import type { StreamHub } from './stream-hub.js';
import type { SourcePort } from './failover-switch.js';

/** Transport-level statistics of a connection (SRT: RTT, rates, loss, latency). */
export type TransportStats = Record<string, number>;

/** Observed state of a connection we make (an output, a pull input). */
export interface ConnectionReport extends ConnectionCounters {
  status: ConnectionStatus;
  /** Where it connects, with any key redacted. */
  target: string;
  /** Bytes sent (outputs) or received (inputs) over all connections. */
  bytes: number;
  /** Bits per second over the last few seconds. */
  bitrate: number;
  frames: number;
  framesDropped: number;
  bytesDropped: number;
  skips: number;
  /** Statistics of the current connection's transport, where it has any (SRT). */
  transport?: TransportStats;
  /** The last lines of a helper process (ffmpeg's stderr), for inputs and tasks that run one. */
  log?: string[];
  /** Per remote peer, for outputs that serve several (srt-listener). */
  peers?: { address: string; port: number; transport: TransportStats }[];
}

/** A running output of a flow (closing it disconnects it). */
export interface FlowOutput {
  readonly name: string;
  start(): void;
  close(reason: string): void;
  report(): ConnectionReport;
  /** Status changes, for outputs that reconnect (an srt-listener output has none). */
  onStatusChange?(listener: StatusListener): void;
}

/** A running input that connects somewhere to get media (rtmp-pull). */
export interface FlowPullInput {
  readonly name: string;
  start(): void;
  close(reason: string): void;
  report(): ConnectionReport;
  onStatusChange?(listener: StatusListener): void;
}

/** A flow's automatic recording (writes files, so it lives outside core). */
export interface FlowRecorder {
  start(): void;
  /** Completes the open file; resolves when every file is closed. */
  close(reason: string): Promise<void>;
  report(): FlowRecorderReport;
}

export interface FlowRecorderReport {
  state: string;
  format: string;
  recordingId: string | null;
  file: string | null;
  lastError: string | null;
  /** After a failure: when a new file is tried, if the source is still live then. */
  nextAttemptAt: string | null;
  sessions: number;
  framesDropped: number;
}

/**
 * Builds the parts of a flow that need the network. Injected so core stays free of
 * sockets and so tests can supply their own.
 */
export interface FlowPartsFactory {
  createOutput(spec: OutputConfig, hub: StreamHub, logger: Logger): FlowOutput;
  createPullInput(spec: ActiveInputSpec, port: SourcePort, logger: Logger): FlowPullInput;
  /**
   * An SRT listener input with a port of its own starts listening with its flow;
   * inputs on the shared port need nothing here (the shared listener routes to them).
   */
  createOwnPortInput(spec: SrtListenerInputSpec, flow: Flow, logger: Logger): FlowPullInput;
  /** The flow's recorder, for `recording.mode: automatic` (absent: this daemon does not record). */
  createRecorder?(flowId: string, spec: RecordingConfig, hub: StreamHub, logger: Logger): FlowRecorder;
}
