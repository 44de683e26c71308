import type { Logger } from 'pino';
import { nextPushStatus, type PushInputStatus } from './input-status.js';
import { StreamHub, type HubSourceOwner, type SourceHandle, type StreamHubOptions } from './stream-hub.js';

/** What the core needs to know about a flow; built from the config by the app. */
export interface FlowSpec {
  id: string;
  name: string;
  enabled: boolean;
  inputs: readonly PushInputSpec[];
  playbackKey: string;
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
}

export type PublishResult =
  | { ok: true; source: SourceHandle }
  | { ok: false; reason: 'busy' | 'disabled' | 'unknown_input'; message: string };

/**
 * A flow at run time: its spec, its hub and the observed state of its inputs.
 * Desired state (spec) and observed state (inputs) are kept apart.
 */
export class Flow {
  readonly hub: StreamHub;
  readonly inputs = new Map<string, InputState>();
  private closed = false;

  constructor(
    public spec: FlowSpec,
    private readonly logger: Logger,
    hubOptions: Partial<StreamHubOptions> = {},
  ) {
    this.hub = new StreamHub(hubOptions);
    for (const input of spec.inputs) {
      this.inputs.set(input.name, { status: 'idle', remoteAddress: undefined, connectedAt: undefined, publishes: 0, refusedBusy: 0 });
    }
  }

  get id(): string {
    return this.spec.id;
  }

  /** Attaches a publisher to one of the flow's inputs, or says why not. */
  publish(inputName: string, owner: HubSourceOwner, remoteAddress: string): PublishResult {
    const state = this.inputs.get(inputName);
    if (!state) return { ok: false, reason: 'unknown_input', message: `flow has no input named ${inputName}` };
    if (this.closed || !this.spec.enabled) return { ok: false, reason: 'disabled', message: 'flow is disabled' };
    const source = this.hub.attachSource(owner);
    if (!source) {
      state.refusedBusy += 1;
      return { ok: false, reason: 'busy', message: 'stream key already in use by a live publisher' };
    }
    state.status = nextPushStatus(state.status, 'publisher_connected');
    state.remoteAddress = remoteAddress;
    state.connectedAt = new Date();
    state.publishes += 1;
    this.logger.info({ inputName, remoteAddress, status: state.status }, 'publisher connected');
    let detached = false;
    const detach = (reason: string): void => {
      if (detached) return;
      detached = true;
      source.detach(reason);
      state.status = nextPushStatus(state.status, 'publisher_left');
      state.remoteAddress = undefined;
      state.connectedAt = undefined;
      this.logger.info({ inputName, reason, status: state.status }, 'publisher disconnected');
    };
    return { ok: true, source: { ...source, detach } };
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.hub.close(reason);
  }
}
