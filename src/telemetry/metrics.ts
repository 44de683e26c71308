import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Flow } from '../core/flow.js';
import type { ConnectionReport, TransportStats } from '../core/flow-parts.js';
import { CONNECTED_STATUSES } from '../core/connection-status.js';
import type { ListenerReport } from '../policy/connection-admission.js';
import { redactHookUrl } from './webhooks.js';

/** What the metrics read at scrape time; nothing is counted twice on the media path. */
export interface MetricsSource {
  flows(): Flow[];
  now(): number;
  /** 1 when the last config load or reload was accepted. */
  configOk(): boolean;
  webhooks(): { url: string; queued: number; counters: { delivered: number; failed: number; dropped: number; retries: number } }[];
  /** Free bytes on the recordings' file system at the last check, if known. */
  recordingFreeBytes(): number | undefined;
  /** Scheduled tasks and how their runs go. */
  tasks(): { id: string; status: string; attempts: number }[];
  /** The RTMP(S) listener and the shared SRT port. */
  listeners(): ListenerReport[];
}

type Labels = Record<string, string>;
type Sample = [Labels, number];

/**
 * Prometheus metrics for flows, inputs and outputs, plus Node's process metrics. Every
 * value is read from the running objects when scraped (collect callbacks), so the media
 * path pays nothing for metrics and a removed flow's series simply disappear.
 */
export function createMetrics(source: MetricsSource): Registry {
  const register = new Registry();
  // The event loop delay monitor is a timer: at its 10 ms default it alone would be most
  // of an idle daemon's CPU. 250 ms still catches a blocked loop.
  collectDefaultMetrics({ register, prefix: 'flowrelay_', eventLoopMonitoringPrecision: 250 });

  // Every value is set afresh at each scrape: reset, then one sample per live object.
  const base = (name: string, help: string, labelNames: string[]) => ({ name, help, labelNames, registers: [register] });
  const gauge = (name: string, help: string, labelNames: string[], samples: () => Sample[]) =>
    new Gauge({
      ...base(name, help, labelNames),
      collect() {
        this.reset();
        for (const [labels, value] of samples()) this.set(labels, value);
      },
    });
  const counter = (name: string, help: string, labelNames: string[], samples: () => Sample[]) =>
    new Counter({
      ...base(name, help, labelNames),
      collect() {
        this.reset();
        for (const [labels, value] of samples()) this.inc(labels, Math.max(0, value));
      },
    });

  gauge('flowrelay_listener_connections', 'Connections open on a listener (rtmp: RTMP and RTMPS together; srt: the shared port)', ['protocol'], () =>
    source.listeners().map((l): Sample => [{ protocol: l.protocol }, l.connections]),
  );
  counter('flowrelay_listener_refusals_total', 'Connections a listener refused, by reason (address lists, connection caps; on srt also stream id routing)', ['protocol', 'reason'], () =>
    source.listeners().flatMap((l) => Object.entries(l.refusals).map(([reason, n]): Sample => [{ protocol: l.protocol, reason }, n])),
  );

  const perFlow = (f: (flow: Flow) => number) => () => source.flows().map((flow): Sample => [{ flow: flow.id }, f(flow)]);
  gauge('flowrelay_config_ok', '1 when the last config load or reload was accepted', [], () => [[{}, source.configOk() ? 1 : 0]]);
  gauge('flowrelay_flows', 'Flows configured', [], () => [[{}, source.flows().length]]);
  gauge('flowrelay_flow_live', '1 while a flow has a live source', ['flow'], perFlow((f) => (f.hub.live ? 1 : 0)));
  gauge('flowrelay_flow_readers', 'Readers attached to a flow (players, outputs)', ['flow'], perFlow((f) => f.hub.readerCount));
  counter('flowrelay_flow_received_bytes_total', 'Media payload bytes a flow received', ['flow'], perFlow((f) => f.hub.counters.bytesIn));
  counter('flowrelay_flow_frames_total', 'Video and audio frames a flow received', ['flow'], perFlow((f) => f.hub.counters.videoFrames + f.hub.counters.audioFrames));
  counter('flowrelay_flow_source_starts_total', 'Sources that attached to a flow (1 + reconnects)', ['flow'], perFlow((f) => f.hub.counters.sourceStarts));
  counter('flowrelay_flow_player_dropped_frames_total', "Frames a flow's RTMP players missed because they fell behind", ['flow'], perFlow((f) => f.hub.counters.playerFramesDropped));
  counter('flowrelay_flow_player_skips_total', "Times one of a flow's RTMP players fell behind and skipped to the next keyframe", ['flow'], perFlow((f) => f.hub.counters.playerSkips));
  counter('flowrelay_flow_timestamp_jumps_total', "Times a source's clock went back and the flow's timeline continued past it", ['flow'], perFlow((f) => f.hub.counters.timestampJumps));
  counter('flowrelay_flow_refusals_total', 'Publishers refused, by reason', ['flow', 'reason'], () =>
    source.flows().flatMap((f) => Object.entries(f.refusals).map(([reason, n]): Sample => [{ flow: f.id, reason }, n])),
  );

  const recorders = (f: (report: NonNullable<ReturnType<NonNullable<Flow['recorder']>['report']>>) => number) => () =>
    source.flows().flatMap((flow): Sample[] => {
      const report = flow.recorder?.report();
      return report ? [[{ flow: flow.id }, f(report)]] : [];
    });
  gauge('flowrelay_flow_recording', '1 while a flow is being recorded (flows with recording.mode automatic)', ['flow'], recorders((r) => (r.state === 'recording' || r.state === 'waiting_for_reconnect' ? 1 : 0)));
  gauge('flowrelay_flow_recording_failed', '1 while a flow cannot record: a write failed or free space is below storage.minFreeSpace', ['flow'], recorders((r) => (r.state === 'failed' || r.state === 'low_disk_space' ? 1 : 0)));
  counter('flowrelay_flow_recording_dropped_frames_total', 'Frames a recording dropped because the disk fell behind', ['flow'], recorders((r) => r.framesDropped));
  gauge('flowrelay_recordings_free_bytes', 'Free bytes on the file system of the recordings directory', [], () => {
    const free = source.recordingFreeBytes();
    return free === undefined ? [] : [[{}, free]];
  });

  const switches = () => source.flows().flatMap((flow) => (flow.failover ? [{ flow, report: flow.failover.report() }] : []));
  gauge('flowrelay_flow_failover_active', '1 for the input a primary/backup flow takes its media from', ['flow', 'input'], () =>
    switches().flatMap(({ flow, report }) => report.inputs.map((i): Sample => [{ flow: flow.id, input: i.name }, report.active === i.name ? 1 : 0])),
  );
  counter('flowrelay_flow_failover_switches_total', 'Switches between the primary and the backup input (failovers and reverts)', ['flow'], () =>
    switches().map(({ flow, report }): Sample => [{ flow: flow.id }, report.switches]),
  );
  gauge('flowrelay_task_running', '1 while a scheduled task is pushing (running or retrying)', ['task'], () =>
    source.tasks().map((t): Sample => [{ task: t.id }, t.status === 'running' || t.status === 'retrying' ? 1 : 0]),
  );
  counter('flowrelay_task_attempts_total', 'ffmpeg runs a task has made', ['task'], () => source.tasks().map((t): Sample => [{ task: t.id }, t.attempts]));

  const inputs = () => source.flows().flatMap((flow) => flow.spec.inputs.map((input) => ({ flow, input })));
  const inputSample = (pick: (x: { push?: NonNullable<ReturnType<Flow['inputs']['get']>>; pull?: ConnectionReport }) => number | undefined) => () =>
    inputs().flatMap(({ flow, input }): Sample[] => {
      const push = flow.inputs.get(input.name);
      const pull = flow.pullInputs.get(input.name)?.report();
      const value = pick({ ...(push && { push }), ...(pull && { pull }) });
      return value === undefined ? [] : [[{ flow: flow.id, input: input.name, type: input.type }, value]];
    });
  const inputLabels = ['flow', 'input', 'type'];
  gauge('flowrelay_input_connected', '1 while an input has a publisher or its connection is up', inputLabels, inputSample(({ push, pull }) => (push ? (push.remoteAddress !== undefined ? 1 : 0) : pull ? (CONNECTED_STATUSES.has(pull.status) ? 1 : 0) : undefined)));
  counter('flowrelay_input_received_bytes_total', 'Bytes an input received', inputLabels, inputSample(({ push, pull }) => push?.bytes ?? pull?.bytes));
  gauge('flowrelay_input_bitrate_bits', 'Bits per second an input receives now', inputLabels, inputSample(({ push, pull }) => (push ? (push.remoteAddress !== undefined ? push.rate.bitsPerSecond(source.now()) : 0) : pull?.bitrate)));
  counter('flowrelay_input_reconnects_total', 'Reconnects of an input (publishes after the first, for inputs others publish to)', inputLabels, inputSample(({ push, pull }) => (push ? Math.max(0, push.publishes - 1) : pull?.reconnects)));
  counter('flowrelay_input_bitrate_exceeded_total', 'Times a publisher stayed over limits.maxBitrate past the grace period', inputLabels, inputSample(({ push }) => push?.bitrateExceeded));

  const outputs = () => source.flows().flatMap((flow) => [...flow.outputs.entries()].map(([name, { spec, output }]) => ({ flow, name, type: spec.type, report: output.report() })));
  const outputSample = (pick: (r: ConnectionReport) => number) => () => outputs().map((o): Sample => [{ flow: o.flow.id, output: o.name, type: o.type }, pick(o.report)]);
  const outputLabels = ['flow', 'output', 'type'];
  gauge('flowrelay_output_connected', '1 while an output is connected', outputLabels, outputSample((r) => (CONNECTED_STATUSES.has(r.status) ? 1 : 0)));
  counter('flowrelay_output_sent_bytes_total', 'Bytes an output sent', outputLabels, outputSample((r) => r.bytes));
  gauge('flowrelay_output_bitrate_bits', 'Bits per second an output sends now', outputLabels, outputSample((r) => r.bitrate));
  counter('flowrelay_output_reconnects_total', 'Reconnects of an output', outputLabels, outputSample((r) => r.reconnects));
  counter('flowrelay_output_dropped_frames_total', 'Frames an output dropped because its destination fell behind', outputLabels, outputSample((r) => r.framesDropped));

  // SRT transport statistics of every connection that has them.
  const srt = (key: keyof TransportStats & string) => () => {
    const out: Sample[] = [];
    for (const { flow, input } of inputs()) {
      const push = flow.inputs.get(input.name);
      const stats = push?.remoteAddress !== undefined ? push.transportStats?.() : flow.pullInputs.get(input.name)?.report().transport;
      if (stats?.[key] !== undefined) out.push([{ flow: flow.id, kind: 'input', name: input.name }, stats[key]]);
    }
    for (const o of outputs()) {
      // (An srt-listener output reports its callers summed: one series, not one per caller.)
      if (o.report.transport?.[key] !== undefined) out.push([{ flow: o.flow.id, kind: 'output', name: o.name }, o.report.transport[key]]);
    }
    return out;
  };
  const srtLabels = ['flow', 'kind', 'name'];
  gauge('flowrelay_srt_rtt_ms', 'SRT round-trip time', srtLabels, srt('rttMs'));
  counter('flowrelay_srt_lost_received_packets_total', 'SRT packets lost on receive', srtLabels, srt('packetsLostReceiving'));
  counter('flowrelay_srt_lost_sent_packets_total', 'SRT packets lost on send', srtLabels, srt('packetsLostSending'));
  counter('flowrelay_srt_retransmitted_packets_total', 'SRT packets retransmitted', srtLabels, srt('packetsRetransmitted'));
  counter('flowrelay_srt_dropped_received_packets_total', 'SRT packets dropped on receive (too late)', srtLabels, srt('packetsDroppedReceiving'));
  // What the demuxer of an SRT input saw in the MPEG-TS: damage SRT did not repair.
  counter('flowrelay_srt_ts_continuity_errors_total', 'MPEG-TS continuity counter gaps on an SRT input (lost or damaged packets)', srtLabels, srt('tsContinuityErrors'));
  counter('flowrelay_srt_ts_pes_dropped_total', 'MPEG-TS PES packets an SRT input dropped (incomplete, malformed or too large)', srtLabels, srt('tsPesDropped'));
  counter('flowrelay_srt_ts_timestamp_jumps_total', "Times an SRT input's MPEG-TS clock jumped by more than 10 s and the timeline continued past it", srtLabels, srt('tsTimestampJumps'));
  // A receiver is told by its place in `webhooks`, and shown by scheme and host only: hook
  // URLs carry secrets in their path, query or user info, and /metrics is often open.
  const hook = (pick: (w: ReturnType<MetricsSource['webhooks']>[number]) => number) => () =>
    source.webhooks().map((w, index): Sample => [{ receiver: String(index), url: redactHookUrl(w.url) }, pick(w)]);
  const hookLabels = ['receiver', 'url'];
  counter('flowrelay_webhook_delivered_total', 'Events a webhook receiver accepted', hookLabels, hook((w) => w.counters.delivered));
  counter('flowrelay_webhook_failed_total', 'Events given up on after every attempt failed', hookLabels, hook((w) => w.counters.failed));
  counter('flowrelay_webhook_dropped_total', 'Events dropped because the queue of a slow or dead receiver was full', hookLabels, hook((w) => w.counters.dropped));
  counter('flowrelay_webhook_retries_total', 'Repeated delivery attempts', hookLabels, hook((w) => w.counters.retries));
  gauge('flowrelay_webhook_queued', 'Events waiting for a webhook receiver', hookLabels, hook((w) => w.queued));
  return register;
}
