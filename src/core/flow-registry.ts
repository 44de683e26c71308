import { createHash, timingSafeEqual } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import { ignoreEvents, type FlowEventSink } from './flow-events.js';
import type { FlowPartsFactory } from './flow-parts.js';
import { Flow, type FlowSpec, type InputChanges, type InputSpec, type OutputChanges } from './flow.js';
import type { StreamHubOptions } from './stream-hub.js';

export interface ApplyResult {
  added: string[];
  removed: string[];
  /** Restarted because enabled, limits, the playback key or the primary and backup inputs changed: their publishers and players were disconnected. */
  restarted: string[];
  /** Changed in place (name, inputs, outputs, recording): what did not change was not interrupted. */
  updated: string[];
  /** Per flow changed in place: which outputs were added, removed or restarted. */
  outputs: Record<string, OutputChanges>;
  /** Per flow changed in place: which inputs were added, removed or restarted. */
  inputs: Record<string, InputChanges>;
  /** Flows whose parts could not be built (a bug, or a setting the schema let through): stopped, the others applied. */
  failed: { id: string; error: string }[];
}

interface KeyEntry {
  key: Buffer;
  flowId: string;
  inputName?: string;
}

function keyHash(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/**
 * The running flows and the key indexes that route publishers and players to them.
 * Keys are looked up by their SHA-256 and then compared in constant time, so neither
 * the lookup nor the comparison leaks how much of a guessed key was right.
 */
export class FlowRegistry {
  private readonly flows = new Map<string, Flow>();
  private publishKeys = new Map<string, KeyEntry>();
  private playKeys = new Map<string, KeyEntry>();

  constructor(
    private readonly logger: Logger,
    private readonly parts: FlowPartsFactory,
    private readonly hubOptions: Partial<StreamHubOptions> = {},
    private readonly events: FlowEventSink = ignoreEvents,
  ) {}

  get(flowId: string): Flow | undefined {
    return this.flows.get(flowId);
  }

  list(): Flow[] {
    return [...this.flows.values()];
  }

  /** Brings the running flows in line with the specs: add, remove, restart or update in place. */
  apply(specs: readonly FlowSpec[]): ApplyResult {
    const result: ApplyResult = { added: [], removed: [], restarted: [], updated: [], outputs: {}, inputs: {}, failed: [] };
    const wanted = new Map(specs.map((s) => [s.id, s]));
    for (const [id, flow] of this.flows) {
      if (!wanted.has(id)) {
        flow.close('flow removed from config');
        this.flows.delete(id);
        result.removed.push(id);
      }
    }
    for (const spec of specs) {
      try {
        this.applyOne(spec, result);
      } catch (err) {
        // One flow that cannot be built must not leave the rest of the config half-applied.
        const error = (err as Error).message;
        this.logger.error({ flowId: spec.id, err: error }, 'flow could not be started; it stays stopped (the next reload tries again)');
        this.flows.get(spec.id)?.close('flow could not be started');
        this.flows.delete(spec.id);
        // applyOne lists a flow only once it is done; per-part changes may be listed before.
        delete result.inputs[spec.id];
        delete result.outputs[spec.id];
        result.failed.push({ id: spec.id, error });
      }
    }
    this.rebuildKeyIndexes();
    for (const flowId of result.added) this.events({ type: 'flow.created', flowId });
    for (const flowId of [...result.restarted, ...result.updated]) this.events({ type: 'flow.updated', flowId });
    for (const flowId of result.removed) this.events({ type: 'flow.deleted', flowId });
    return result;
  }

  private applyOne(spec: FlowSpec, result: ApplyResult): void {
    const current = this.flows.get(spec.id);
    if (!current) {
      this.startFlow(spec);
      result.added.push(spec.id);
    } else if (isDeepStrictEqual(current.spec, spec)) {
      return;
    } else if (
      isDeepStrictEqual({ ...current.spec, name: spec.name, outputs: spec.outputs, inputs: spec.inputs, recording: spec.recording, failover: spec.failover }, spec) &&
      inputsChangeInPlace(current.spec.inputs, spec.inputs)
    ) {
      // Only the name, outputs, inputs, recording or failover timings changed: each changes
      // alone, the hub and its players stay, and what did not change is not interrupted.
      current.spec = { ...current.spec, name: spec.name };
      current.updateFailover(spec.failover);
      current.updateRecording(spec.recording);
      if (!isDeepStrictEqual(current.spec.inputs, spec.inputs)) result.inputs[spec.id] = current.updateInputs(spec.inputs);
      result.outputs[spec.id] = current.updateOutputs(spec.outputs);
      result.updated.push(spec.id);
    } else {
      current.close('flow configuration changed');
      this.startFlow(spec);
      result.restarted.push(spec.id);
    }
  }

  /** The flow and input a stream key publishes to, if any. */
  findPublishTarget(streamKey: string): { flow: Flow; inputName: string } | undefined {
    const entry = this.lookup(this.publishKeys, streamKey);
    const flow = entry && this.flows.get(entry.flowId);
    return flow && entry.inputName ? { flow, inputName: entry.inputName } : undefined;
  }

  findPlayTarget(playbackKey: string): Flow | undefined {
    const entry = this.lookup(this.playKeys, playbackKey);
    return entry && this.flows.get(entry.flowId);
  }

  close(reason: string): void {
    for (const flow of this.flows.values()) flow.close(reason);
    this.flows.clear();
    this.publishKeys.clear();
    this.playKeys.clear();
  }

  private startFlow(spec: FlowSpec): void {
    const flow = new Flow(spec, this.logger.child({ flowId: spec.id }), this.parts, this.hubOptions, Date.now, this.events);
    this.flows.set(spec.id, flow);
    flow.start();
  }

  private rebuildKeyIndexes(): void {
    const publish = new Map<string, KeyEntry>();
    const play = new Map<string, KeyEntry>();
    for (const flow of this.flows.values()) {
      for (const input of flow.spec.inputs) {
        if (input.type !== 'rtmp-push') continue;
        publish.set(keyHash(input.streamKey), { key: Buffer.from(input.streamKey), flowId: flow.id, inputName: input.name });
      }
      play.set(keyHash(flow.spec.playbackKey), { key: Buffer.from(flow.spec.playbackKey), flowId: flow.id });
    }
    this.publishKeys = publish;
    this.playKeys = play;
  }

  private lookup(index: Map<string, KeyEntry>, candidate: string): KeyEntry | undefined {
    const entry = index.get(keyHash(candidate));
    if (!entry) return undefined;
    const given = Buffer.from(candidate);
    return given.length === entry.key.length && timingSafeEqual(given, entry.key) ? entry : undefined;
  }
}

/**
 * Inputs change in place when their names and order stay, or when a backup is added after
 * the one input (it goes live behind a failover switch). Removing the backup or reordering
 * them changes who is primary: a restart.
 */
function inputsChangeInPlace(before: readonly InputSpec[], after: readonly InputSpec[]): boolean {
  const names = (inputs: readonly InputSpec[]) => inputs.map((i) => i.name);
  if (isDeepStrictEqual(names(before), names(after))) return true;
  return before.length === 1 && after.length === 2 && after[0]!.name === before[0]!.name;
}
