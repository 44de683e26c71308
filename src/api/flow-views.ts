import type { Flow, InputSpec } from '../core/flow.js';
import type { ConnectionReport } from '../core/flow-parts.js';

/** Where clients reach this daemon, for the URLs in responses. */
export interface PublicEndpoints {
  host: string;
  rtmpPort: number;
  rtmpsPort: number | undefined;
  srtPort: number | undefined;
}

/** Host for a URL: IPv6 literals need brackets. */
function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function portOf(listen: string): number {
  return Number(listen.slice(listen.lastIndexOf(':') + 1));
}

/**
 * How a publisher reaches an input: URLs always, keys and passphrases only with
 * `secrets` (write tokens). Inputs that connect out (pulls, SRT callers) have none.
 */
function ingest(flowId: string, input: InputSpec, at: PublicEndpoints, secrets: boolean): Record<string, unknown> | undefined {
  const host = urlHost(at.host);
  const key = (value: string) => (secrets ? { streamKey: value } : {});
  if (input.type === 'rtmp-push') {
    return {
      rtmp: { url: `rtmp://${host}:${at.rtmpPort}/live`, ...key(input.streamKey) },
      ...(at.rtmpsPort !== undefined && { rtmps: { url: `rtmps://${host}:${at.rtmpsPort}/live`, ...key(input.streamKey) } }),
    };
  }
  if (input.type === 'srt-listener') {
    const ownPort = input.listen !== undefined ? portOf(input.listen) : undefined;
    const port = ownPort ?? at.srtPort;
    if (port === undefined) return undefined;
    const streamId = ownPort !== undefined ? input.streamKey : `#!::r=${flowId},m=publish,s=${input.streamKey}`;
    return {
      srt: {
        url: `srt://${host}:${port}`,
        ...(secrets && { streamId, ...(input.passphrase !== undefined && { passphrase: input.passphrase }) }),
        ...(input.latencyMs !== undefined && { latencyMs: input.latencyMs }),
      },
    };
  }
  return undefined;
}

/** Playback URLs carry the playback key, so without `secrets` only the bases are shown. */
function playback(flow: Flow, at: PublicEndpoints, secrets: boolean): Record<string, unknown> {
  const host = urlHost(at.host);
  const key = flow.spec.playbackKey;
  const rtmp = (scheme: string, port: number) => (secrets ? { url: `${scheme}://${host}:${port}/live/${key}` } : { url: `${scheme}://${host}:${port}/live` });
  return {
    rtmp: rtmp('rtmp', at.rtmpPort),
    ...(at.rtmpsPort !== undefined && { rtmps: rtmp('rtmps', at.rtmpsPort) }),
    ...(at.srtPort !== undefined && {
      srt: secrets ? { url: `srt://${host}:${at.srtPort}`, streamId: `#!::r=${flow.id},m=request,s=${key}` } : { url: `srt://${host}:${at.srtPort}` },
    }),
  };
}

/** Live state of one input, in one shape whatever its type. */
export function inputStatus(flow: Flow, input: InputSpec, now: number): Record<string, unknown> {
  const pushed = flow.inputs.get(input.name);
  const part = flow.pullInputs.get(input.name);
  if (pushed) {
    const live = pushed.remoteAddress !== undefined;
    // An input on a port of its own that it could not open is failed, whatever its publisher state says.
    const listening = part?.report();
    const failed = listening?.status === 'failed_to_connect' ? { status: listening.status, lastError: listening.lastError ?? null, nextAttemptAt: listening.nextAttemptAt?.toISOString() ?? null } : {};
    return {
      status: pushed.status,
      remoteAddress: pushed.remoteAddress ?? null,
      connectedAt: pushed.connectedAt?.toISOString() ?? null,
      bytes: pushed.bytes,
      frames: pushed.frames,
      bitrate: live ? pushed.rate.bitsPerSecond(now) : 0,
      publishes: pushed.publishes,
      refusedBusy: pushed.refusedBusy,
      replacedSilent: pushed.replacedSilent,
      bitrateExceeded: pushed.bitrateExceeded,
      lastViolation: pushed.lastViolation ?? null,
      ...(live && pushed.transportStats && { transport: pushed.transportStats() }),
      ...failed,
    };
  }
  return part ? connectionView(part.report()) : notRunning(flow);
}

/** A ConnectionReport as JSON: dates as ISO strings, absent values as null. */
export function connectionView(r: ConnectionReport): Record<string, unknown> {
  return {
    ...r,
    lastError: r.lastError ?? null,
    lastErrorAt: r.lastErrorAt?.toISOString() ?? null,
    connectedAt: r.connectedAt?.toISOString() ?? null,
    nextAttemptAt: r.nextAttemptAt?.toISOString() ?? null,
  };
}

/** One output's configuration (secrets only with `secrets`) and live state. */
export function outputView(flow: Flow, name: string, secrets: boolean): Record<string, unknown> | undefined {
  const entry = flow.outputs.get(name);
  const spec = entry?.spec ?? flow.spec.outputs.find((o) => o.name === name);
  if (!spec) return undefined;
  const config: Record<string, unknown> = { ...spec };
  if (!secrets) {
    // Destination URLs often carry the key in the path (rtmp://a.rtmp.youtube.com/live2/KEY).
    for (const k of ['url', 'streamKey', 'passphrase', 'streamId']) if (k in config) config[k] = k === 'url' ? redactUrlPath(String(config[k])) : '***';
  }
  return { ...config, status: outputStatus(flow, name) };
}

/** Keeps scheme, host and port; hides the path, where stream keys live. */
function redactUrlPath(url: string): string {
  const m = /^([a-z]+:\/\/[^/]+)(\/.*)?$/i.exec(url);
  return m ? `${m[1]}${m[2] ? '/***' : ''}` : '***';
}

export function flowStatus(flow: Flow, now: number): Record<string, unknown> {
  const hub = flow.hub;
  return {
    live: hub.live,
    readers: hub.readerCount,
    counters: { ...hub.counters },
    refusals: { ...flow.refusals },
    inputs: flow.spec.inputs.map((input) => ({ name: input.name, type: input.type, ...inputStatus(flow, input, now) })),
    outputs: flow.spec.outputs.map((o) => ({ name: o.name, type: o.type, ...outputStatus(flow, o.name) })),
    recording: recordingStatus(flow),
    ...(flow.failover && { failover: flow.failover.report() }),
  };
}

/** The flow's recorder: what it is doing and the file it writes. */
function recordingStatus(flow: Flow): Record<string, unknown> {
  const report = flow.recorder?.report();
  return report ? { mode: flow.spec.recording.mode, ...report } : { mode: flow.spec.recording.mode, state: flow.spec.recording.mode === 'off' ? 'off' : 'idle' };
}

/** A running output's report, or why it is not running. */
function outputStatus(flow: Flow, name: string): Record<string, unknown> {
  const entry = flow.outputs.get(name);
  if (entry) return connectionView(entry.output.report());
  // Switched off is not waiting for the input (idle).
  return flow.spec.outputs.find((o) => o.name === name)?.enabled === false ? { status: 'disabled' } : notRunning(flow);
}

/** An input or output without a running connection (disabled, or not started yet). */
function notRunning(flow: Flow): Record<string, unknown> {
  return { status: flow.spec.enabled ? 'idle' : 'disabled' };
}

/** A flow as the API shows it: configuration, how to reach it, and live state. */
export function flowView(flow: Flow, meta: Record<string, string>, at: PublicEndpoints, secrets: boolean, now: number): Record<string, unknown> {
  return {
    id: flow.id,
    name: flow.spec.name,
    enabled: flow.spec.enabled,
    meta,
    limits: flow.spec.limits,
    inputs: flow.spec.inputs.map((input) => {
      const reach = ingest(flow.id, input, at, secrets);
      return { name: input.name, type: input.type, ...(reach && { ingest: reach }), ...inputStatus(flow, input, now) };
    }),
    outputs: flow.spec.outputs.map((o) => outputView(flow, o.name, secrets)),
    playback: playback(flow, at, secrets),
    recording: { ...flow.spec.recording, status: recordingStatus(flow) },
    ...(flow.failover && { failover: { ...flow.spec.failover, status: flow.failover.report() } }),
    status: { live: flow.hub.live, readers: flow.hub.readerCount, counters: { ...flow.hub.counters } },
  };
}
