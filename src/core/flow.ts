import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { FlowInputConfig, FlowLimitsConfig, OutputConfig, PeerConfig, PullInputConfig, RecordingConfig, RtmpPullInputConfig, SrtCallerInputConfig, SrtListenerInputConfig } from '../config/schema.js';
import { BitrateCap } from '../policy/bitrate-cap.js';
import { CidrList } from '../policy/cidr.js';
import { RateMeter } from '../policy/rate-meter.js';
import { ignoreEvents, type FlowEventSink } from './flow-events.js';
import type { FlowOutput, FlowPartsFactory, FlowPullInput, FlowRecorder } from './flow-parts.js';
import { IDLE_TIMEOUT_REASON, nextPushStatus, type PushInputStatus } from './input-status.js';
import { StreamHub, type HubSourceOwner, type SourceHandle, type StreamHubOptions } from './stream-hub.js';
import { FailoverSwitch, type FailoverSettings, type SourcePort } from './failover-switch.js';
import { systemClock, type Clock } from '../lib/clock.js';

/**
 * A publisher that has sent no media for this long is taken for a dead connection (an
 * encoder that reconnected after a network drop leaves its old TCP connection half-open
 * until the idle timeout): a new publisher with the input's key replaces it. A publisher
 * that is sending is never replaced, so two encoders sharing a key do not take turns.
 */
export const SILENT_PUBLISHER_REPLACE_MS = 3_000;

/** What the core needs to know about a flow; built from the config by the app. */
export interface FlowSpec {
  id: string;
  name: string;
  enabled: boolean;
  inputs: readonly InputSpec[];
  outputs: readonly OutputConfig[];
  playbackKey: string;
  limits: FlowLimitsConfig;
  recording: RecordingConfig;
  /** Used when the flow has two inputs (primary, backup). */
  failover: FailoverSettings;
}

/** An SRT listener input: callers publish to us (on the shared port or one of its own). */
export type SrtListenerInputSpec = SrtListenerInputConfig & { streamKey: string };
/** Inputs that connect out to get their media. */
/**
 * A cascade input, with the peer a remote one reaches resolved from `peers`: part of the
 * spec, so that a reload that changes the peer restarts the inputs that use it.
 */
export type FlowInputSpec = FlowInputConfig & { peer?: PeerConfig };
export type ActiveInputSpec = RtmpPullInputConfig | SrtCallerInputConfig | PullInputConfig | FlowInputSpec;
export type InputSpec = PushInputSpec | SrtListenerInputSpec | ActiveInputSpec;

/** Inputs others publish to: their publisher attaches through Flow.publish. */
export function isPassiveInput(input: InputSpec): input is PushInputSpec | SrtListenerInputSpec {
  return input.type === 'rtmp-push' || input.type === 'srt-listener';
}

export interface InputChanges {
  added: string[];
  removed: string[];
  restarted: string[];
}

export interface OutputChanges {
  added: string[];
  removed: string[];
  restarted: string[];
}

export interface PushInputSpec {
  name: string;
  type: 'rtmp-push';
  streamKey: string;
}

export interface InputState {
  status: PushInputStatus;
  /** Publisher's address while one is connected. */
  remoteAddress: string | undefined;
  connectedAt: Date | undefined;
  publishes: number;
  refusedBusy: number;
  /** Publishers disconnected because a new one came while they sent nothing (SILENT_PUBLISHER_REPLACE_MS). */
  replacedSilent: number;
  /** When the current publisher last sent media (or connected); 0 without one. */
  lastMediaAt: number;
  /** Transport statistics of the current publisher's connection, where it has any (SRT). */
  transportStats: (() => Record<string, number>) | undefined;
  /** Times a publisher went over limits.maxBitrate for longer than the grace period. */
  bitrateExceeded: number;
  /** The last limit violation, e.g. "bitrate_exceeded: measured 6.1 Mbit/s, allowed 2.2 Mbit/s". */
  lastViolation: string | undefined;
  /** Media payload bytes, and coded frames (not codec headers), received over all publishes. */
  bytes: number;
  frames: number;
  /** Media bits per second of the current publisher. */
  readonly rate: RateMeter;
}

export type PublishResult =
  | { ok: true; source: SourceHandle }
  | { ok: false; reason: 'busy' | 'disabled' | 'unknown_input' | 'forbidden'; message: string };

/**
 * A flow at run time: its spec, its hub and the observed state of its inputs.
 * Desired state (spec) and observed state (inputs) are kept apart.
 */
export class Flow {
  readonly hub: StreamHub;
  /** Push inputs' observed state; pull inputs report through `pullInputs`. */
  readonly inputs = new Map<string, InputState>();
  readonly pullInputs = new Map<string, FlowPullInput>();
  readonly outputs = new Map<string, { spec: OutputConfig; output: FlowOutput }>();
  /** Present while recording.mode is automatic. */
  recorder: FlowRecorder | undefined;
  /** Present for a flow with a primary and a backup input. */
  failover: FailoverSwitch | undefined;
  /** Publishers refused, per reason (forbidden address, busy input, ...). */
  readonly refusals: Record<string, number> = {};
  private readonly cidrs: CidrList;
  private closed = false;
  /**
   * The publisher attached to each push input, so a changed input or a newcomer can
   * disconnect it, and an added backup can move it behind a failover switch (`target` is
   * where its pushes go, `rebind` points them elsewhere).
   */
  private readonly publishers = new Map<string, { owner: HubSourceOwner; detach(reason: string): void; target(): SourceHandle; rebind(next: SourceHandle): void }>();

  constructor(
    public spec: FlowSpec,
    private readonly logger: Logger,
    private readonly parts: FlowPartsFactory,
    hubOptions: Partial<StreamHubOptions> = {},
    private readonly now: () => number = Date.now,
    private readonly events: FlowEventSink = ignoreEvents,
    private readonly clock: Clock = systemClock,
  ) {
    this.hub = new StreamHub(hubOptions);
    this.failover = this.createFailover(spec.inputs);
    this.cidrs = CidrList.parse(spec.limits.cidrs);
    for (const input of spec.inputs) this.addInputState(input);
  }

  private createFailover(inputs: readonly InputSpec[]): FailoverSwitch | undefined {
    const [primary, backup] = inputs;
    if (!primary || !backup) return undefined;
    return new FailoverSwitch(this.spec.id, this.hub, [primary.name, backup.name], this.spec.failover, this.clock, this.events, this.logger.child({ component: 'failover' }));
  }

  /** Starts what connects out: pull inputs and outputs (not for a disabled flow). */
  start(): void {
    if (!this.spec.enabled || this.closed) return;
    for (const input of this.spec.inputs) this.startInput(input);
    this.updateOutputs(this.spec.outputs);
    this.startRecorder();
  }

  /** Applies changed failover timings in place: no input or reader is disturbed. */
  updateFailover(failover: FailoverSettings): void {
    this.spec = { ...this.spec, failover };
    this.failover?.updateSettings(failover);
  }

  /**
   * Applies a changed `recording` section: the running recorder completes its file and a
   * new one starts with the new settings (at once, if a source is live).
   */
  updateRecording(recording: RecordingConfig): void {
    if (isDeepStrictEqual(this.spec.recording, recording)) return;
    this.spec = { ...this.spec, recording };
    void this.recorder?.close('recording settings changed');
    this.recorder = undefined;
    if (this.spec.enabled && !this.closed) this.startRecorder();
  }

  private startRecorder(): void {
    if (this.spec.recording.mode !== 'automatic' || !this.parts.createRecorder) return;
    this.recorder = this.parts.createRecorder(this.id, this.spec.recording, this.hub, this.logger.child({ component: 'recording' }));
    this.recorder.start();
  }

  /**
   * Brings the inputs in line with `inputs`: a removed or changed input stops (its
   * publisher is disconnected, its pull closed) and a new or changed one starts. The hub,
   * its players and the outputs stay: they see the source end and the next one begin.
   */
  updateInputs(inputs: readonly InputSpec[]): InputChanges {
    const changes: InputChanges = { added: [], removed: [], restarted: [] };
    const before = new Map(this.spec.inputs.map((i) => [i.name, i]));
    const after = new Map(inputs.map((i) => [i.name, i]));
    const backupAdded = !this.failover && inputs.length === 2;
    this.spec = { ...this.spec, inputs };
    if (backupAdded) this.putPrimaryBehindSwitch(inputs, changes);
    for (const [name, old] of before) {
      const next = after.get(name);
      if (next && isDeepStrictEqual(old, next)) continue;
      this.stopInput(name, next ? 'input configuration changed' : 'input removed');
      if (!next) changes.removed.push(name);
    }
    for (const [name, input] of after) {
      const old = before.get(name);
      if (old && isDeepStrictEqual(old, input)) continue;
      this.addInputState(input);
      if (this.spec.enabled && !this.closed) this.startInput(input);
      (old ? changes.restarted : changes.added).push(name);
    }
    return changes;
  }

  /**
   * A backup was added to a one-input flow: a failover switch now stands between the
   * inputs and the hub. A live publisher on the primary is moved behind it without a
   * break: players and outputs see no end. A primary that connects out (a pull) is
   * restarted on its side of the switch.
   */
  private putPrimaryBehindSwitch(inputs: readonly InputSpec[], changes: InputChanges): void {
    this.failover = this.createFailover(inputs);
    const primary = inputs[0]!;
    const publisher = this.publishers.get(primary.name);
    if (publisher && this.failover) {
      // The hub source the publisher pushed into becomes the switch's; its pushes go to its side.
      const side = this.failover.adopt(primary.name, publisher.owner, publisher.target(), this.hub.startupPayloads());
      if (side) publisher.rebind(side);
      return;
    }
    if (this.pullInputs.has(primary.name)) {
      this.stopInput(primary.name, 'a backup input was added');
      this.addInputState(primary);
      if (this.spec.enabled && !this.closed) this.startInput(primary);
      changes.restarted.push(primary.name);
    }
  }

  private addInputState(input: InputSpec): void {
    if (!isPassiveInput(input)) return;
    this.inputs.set(input.name, {
      status: 'idle',
      remoteAddress: undefined,
      connectedAt: undefined,
      publishes: 0,
      refusedBusy: 0,
      replacedSilent: 0,
      lastMediaAt: 0,
      transportStats: undefined,
      bitrateExceeded: 0,
      lastViolation: undefined,
      bytes: 0,
      frames: 0,
      rate: new RateMeter(),
    });
  }

  /** Starts an input that connects out, or listens on a port of its own. */
  private startInput(input: InputSpec): void {
    const logger = this.logger.child({ inputName: input.name });
    let part: FlowPullInput | undefined;
    if (!isPassiveInput(input)) part = this.parts.createPullInput(input, this.portOf(input.name), logger);
    else if (input.type === 'srt-listener' && input.listen !== undefined) part = this.parts.createOwnPortInput(input, this, logger);
    if (!part) return;
    part.onStatusChange?.((status, previous, lastError) =>
      this.events({ type: 'input.status', flowId: this.id, input: input.name, status, previous, lastError: lastError ?? null }),
    );
    this.pullInputs.set(input.name, part);
    part.start();
  }

  private stopInput(name: string, reason: string): void {
    this.publishers.get(name)?.owner.kick(reason);
    this.publishers.delete(name);
    this.inputs.delete(name);
    this.pullInputs.get(name)?.close(reason);
    this.pullInputs.delete(name);
  }

  /**
   * Brings the running outputs in line with `outputs`: new ones start, removed ones
   * disconnect, changed ones restart; the others are not touched.
   */
  updateOutputs(outputs: readonly OutputConfig[]): OutputChanges {
    const changes: OutputChanges = { added: [], removed: [], restarted: [] };
    this.spec = { ...this.spec, outputs };
    if (!this.spec.enabled || this.closed) return changes;
    const wanted = new Map(outputs.filter((o) => o.enabled).map((o) => [o.name, o]));
    for (const [name, running] of this.outputs) {
      if (!wanted.has(name)) {
        running.output.close('output removed');
        this.outputs.delete(name);
        changes.removed.push(name);
      }
    }
    for (const [name, spec] of wanted) {
      const running = this.outputs.get(name);
      if (running && isDeepStrictEqual(running.spec, spec)) continue;
      if (running) running.output.close('output configuration changed');
      const output = this.parts.createOutput(spec, this.hub, this.logger.child({ outputName: name }));
      output.onStatusChange?.((status, previous, lastError) =>
        this.events({ type: 'output.status', flowId: this.id, output: name, status, previous, lastError: lastError ?? null }),
      );
      this.outputs.set(name, { spec, output });
      output.start();
      (running ? changes.restarted : changes.added).push(name);
    }
    return changes;
  }

  get id(): string {
    return this.spec.id;
  }

  /** Where an input attaches its source: its side of the failover switch, or the hub. */
  private portOf(inputName: string): SourcePort {
    return this.failover?.port(inputName) ?? this.hub;
  }

  /** Whether an input has a live source (with failover, each input has its own). */
  inputLive(inputName: string): boolean {
    return this.failover ? this.failover.isLive(inputName) : this.hub.live;
  }

  /** Whether limits.cidrs lets a publisher from this address in (an empty list lets everyone in). */
  admitsAddress(address: string): boolean {
    return this.cidrs.size === 0 || this.cidrs.matches(address);
  }

  /** Attaches a publisher to one of the flow's inputs, or says why not. */
  publish(inputName: string, owner: HubSourceOwner, remoteAddress: string, transportStats?: () => Record<string, number>): PublishResult {
    const state = this.inputs.get(inputName);
    if (!state) return { ok: false, reason: 'unknown_input', message: `flow has no input named ${inputName}` };
    if (this.closed || !this.spec.enabled) return this.refuse('disabled', 'flow is disabled');
    if (!this.admitsAddress(remoteAddress)) return this.refuse('forbidden', 'publishing from this address is not allowed for this flow');
    const attached = this.makeRoomForPublisher(inputName) ? this.portOf(inputName).attachSource(owner) : undefined;
    if (!attached) {
      state.refusedBusy += 1;
      return this.refuse('busy', 'stream key already in use by a live publisher');
    }
    state.status = nextPushStatus(state.status, 'publisher_connected');
    state.remoteAddress = remoteAddress;
    state.connectedAt = new Date();
    state.publishes += 1;
    state.transportStats = transportStats;
    state.lastMediaAt = this.now();
    state.rate.reset();
    this.logger.info({ inputName, remoteAddress, status: state.status }, 'publisher connected');
    this.events({ type: 'input.connected', flowId: this.id, input: inputName, remoteAddress });
    // Where the pushes go: the hub or a failover side; moved when a backup is added.
    let target: SourceHandle = attached;
    let detached = false;
    const detach = (reason: string): void => {
      if (detached) return;
      detached = true;
      target.detach(reason);
      if (this.publishers.get(inputName)?.owner === owner) this.publishers.delete(inputName);
      state.lastMediaAt = 0;
      state.status = nextPushStatus(state.status, reason === IDLE_TIMEOUT_REASON ? 'publisher_timed_out' : 'publisher_left');
      state.remoteAddress = undefined;
      state.connectedAt = undefined;
      state.transportStats = undefined;
      this.logger.info({ inputName, reason, status: state.status }, 'publisher disconnected');
      this.events({ type: 'input.disconnected', flowId: this.id, input: inputName, reason });
    };
    this.publishers.set(inputName, { owner, detach, target: () => target, rebind: (next) => (target = next) });
    const cap = this.bitrateCap();
    const push: SourceHandle['push'] = (kind, timestamp, payload) => {
      const codedFrame = target.push(kind, timestamp, payload);
      const now = this.now();
      state.lastMediaAt = now;
      state.bytes += payload.length;
      if (codedFrame) state.frames += 1;
      state.rate.add(payload.length, now);
      const verdict = cap?.add(payload.length, now);
      if (verdict?.exceeded) this.onBitrateExceeded(inputName, state, owner, verdict.measuredBps, verdict.allowedBps);
      return codedFrame;
    };
    const source: SourceHandle = {
      push,
      detach,
      pushMetadata: (timestamp, payload) => target.pushMetadata(timestamp, payload),
      pushData: (timestamp, payload) => target.pushData(timestamp, payload),
      splice: () => target.splice(),
    };
    return { ok: true, source };
  }

  /** How long the input's publisher has sent no media (since it connected, if it sent none yet). */
  silentForMs(inputName: string): number {
    return this.now() - (this.inputs.get(inputName)?.lastMediaAt ?? 0);
  }

  /**
   * Whether a new publisher may attach to the input: it has none, or its publisher sent no
   * media for SILENT_PUBLISHER_REPLACE_MS and is disconnected now to make room. The caller
   * has already checked the newcomer's key.
   */
  makeRoomForPublisher(inputName: string): boolean {
    if (!this.inputLive(inputName)) return true;
    const current = this.publishers.get(inputName);
    const state = this.inputs.get(inputName);
    if (!current || !state) return false;
    const silentMs = this.silentForMs(inputName);
    if (silentMs < SILENT_PUBLISHER_REPLACE_MS) return false;
    const reason = `replaced by a new publisher after ${(silentMs / 1000).toFixed(1)} s without media`;
    this.logger.warn({ code: 'publisher_replaced', inputName, remoteAddress: state.remoteAddress, silentMs }, 'silent publisher replaced by a new one');
    state.replacedSilent += 1;
    current.owner.kick(reason);
    current.detach(reason);
    return !this.inputLive(inputName);
  }

  private bitrateCap(): BitrateCap | undefined {
    const { maxBitrate, bitrateTolerance, bitrateGraceSeconds, bitrateWindowSeconds } = this.spec.limits;
    if (maxBitrate === undefined) return undefined;
    return new BitrateCap({ maxBitrate, tolerance: bitrateTolerance, graceMs: bitrateGraceSeconds * 1000, windowSeconds: bitrateWindowSeconds });
  }

  private onBitrateExceeded(inputName: string, state: InputState, owner: HubSourceOwner, measuredBps: number, allowedBps: number): void {
    state.bitrateExceeded += 1;
    state.lastViolation = `bitrate_exceeded: measured ${(measuredBps / 1e6).toFixed(2)} Mbit/s, allowed ${(allowedBps / 1e6).toFixed(2)} Mbit/s`;
    const action = this.spec.limits.bitrateAction;
    this.logger.warn({ code: 'bitrate_exceeded', inputName, measuredBps, allowedBps, action }, 'publisher above the bitrate cap');
    this.events({ type: 'input.bitrate_exceeded', flowId: this.id, input: inputName, measuredBps, allowedBps, action });
    if (action === 'disconnect') owner.kick('bitrate_exceeded');
  }

  private refuse(reason: 'busy' | 'disabled' | 'forbidden', message: string): PublishResult {
    this.refusals[reason] = (this.refusals[reason] ?? 0) + 1;
    return { ok: false, reason, message };
  }

  /** Outputs first (they say goodbye to their destinations), then inputs, then the hub. */
  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    for (const { output } of this.outputs.values()) output.close(reason);
    this.outputs.clear();
    void this.recorder?.close(reason);
    this.recorder = undefined;
    // Before the hub: it disconnects both inputs' publishers, active or not.
    this.failover?.close(reason);
    for (const pull of this.pullInputs.values()) pull.close(reason);
    this.pullInputs.clear();
    this.hub.close(reason);
  }
}
