import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import { isCodedAudio, isCodedVideo, parseAudioTag, parseVideoTag } from '../protocol/flv/tag.js';
import type { FlowEvent } from './flow-events.js';
import type { HubSourceOwner, SourceHandle, StreamHub } from './stream-hub.js';

export interface FailoverSettings {
  /** The active input delivered no media this long (or disconnected): switch to the other. */
  afterMs: number;
  /** Go back to the primary once it has been healthy for revertAfterMs. */
  revert: boolean;
  revertAfterMs: number;
}

/** Where an input attaches its source: the hub itself, or one side of a failover switch. */
export interface SourcePort {
  attachSource(owner: HubSourceOwner): SourceHandle | undefined;
}

/** One input's side of the switch: its publisher and what a switch to it needs to re-send. */
interface Side {
  name: string;
  owner: HubSourceOwner | undefined;
  lastMediaAt: number;
  /** Since when it has delivered media without a gap longer than afterMs (for revert). */
  healthySince: number | undefined;
  metadata: Buffer | undefined;
  videoHeader: Buffer | undefined;
  audioHeader: Buffer | undefined;
  /**
   * The side's publisher left while it was active and a new one took its place: that is
   * another encoder session (its timestamps start again), so it is spliced in like a
   * switch, at its first join point.
   */
  needsSplice: boolean;
  /**
   * Set when the side is spliced in at its keyframe: its audio stamped before that time is
   * dropped. An MPEG-TS source (SRT) delivers audio up to a few hundred ms after the video
   * of the same time; passed on, that audio would land behind what readers already have.
   */
  audioFrom: number | undefined;
}

export interface FailoverReport {
  active: string | null;
  /** The input the switch waits to take over (at its next keyframe). */
  pending: string | null;
  switches: number;
  inputs: { name: string; live: boolean; lastMediaAgoMs: number | null }[];
}

/**
 * Primary/backup for one flow. Each input publishes into its own side; the switch holds
 * the flow's one hub source and forwards the active side. When the active side stalls
 * (no media for afterMs) or disconnects while the other delivers, the switch waits for
 * the other's next keyframe and splices it in: readers stay attached, get its codec
 * headers and metadata again, and see timestamps that keep moving forward.
 */
export class FailoverSwitch {
  private readonly sides: [Side, Side];
  private hubSource: SourceHandle | undefined;
  private active: Side | undefined;
  private pending: { side: Side; reason: 'stalled' | 'disconnected' | 'revert' } | undefined;
  private switches = 0;
  /**
   * Until when a primary that starts delivering is still taken over a backup that started
   * first: encoders started together race, and the backup winning by a few milliseconds
   * must not make it the active input for good (without `revert`).
   */
  private startUntil = 0;
  private timer: unknown;
  private closed = false;

  constructor(
    private readonly flowId: string,
    private readonly hub: StreamHub,
    names: readonly [string, string],
    private settings: FailoverSettings,
    private readonly clock: Clock,
    private readonly events: (event: FlowEvent) => void,
    private readonly logger: Logger,
  ) {
    const side = (name: string): Side => ({ name, owner: undefined, lastMediaAt: 0, healthySince: undefined, metadata: undefined, videoHeader: undefined, audioHeader: undefined, needsSplice: false, audioFrom: undefined });
    this.sides = [side(names[0]), side(names[1])];
    this.schedule();
  }

  port(name: string): SourcePort {
    const side = this.side(name);
    return { attachSource: (owner) => this.attach(side, owner) };
  }

  /**
   * Takes over a publisher already live on the hub (a backup input was added to a flow
   * that had one): its hub source becomes the switch's, unbroken, and the publisher pushes
   * into its side from now on through the handle returned. `cached` is what the hub holds
   * of its metadata and headers, for a later switch back to it.
   */
  adopt(name: string, owner: HubSourceOwner, hubSource: SourceHandle, cached: { metadata?: Buffer; videoHeader?: Buffer; audioHeader?: Buffer }): SourceHandle | undefined {
    const side = this.side(name);
    if (this.hubSource || this.closed) return undefined;
    const handle = this.attach(side, owner);
    if (!handle) return undefined;
    this.hubSource = hubSource;
    this.active = side;
    side.metadata = cached.metadata;
    side.videoHeader = cached.videoHeader;
    side.audioHeader = cached.audioHeader;
    side.lastMediaAt = side.healthySince = this.clock.now();
    return handle;
  }

  private side(name: string): Side {
    const side = this.sides.find((s) => s.name === name);
    if (!side) throw new Error(`failover switch has no input named ${name}`);
    return side;
  }

  /** New timings take effect at the next check; the active input and its publishers stay. */
  updateSettings(settings: FailoverSettings): void {
    this.settings = settings;
  }

  isLive(name: string): boolean {
    return this.sides.some((s) => s.name === name && s.owner !== undefined);
  }

  report(): FailoverReport {
    const now = this.clock.now();
    return {
      active: this.active?.name ?? null,
      pending: this.pending?.side.name ?? null,
      switches: this.switches,
      inputs: this.sides.map((s) => ({ name: s.name, live: s.owner !== undefined, lastMediaAgoMs: s.owner && s.lastMediaAt > 0 ? now - s.lastMediaAt : null })),
    };
  }

  /** Stops switching and disconnects both inputs' publishers. Idempotent. */
  close(reason: string): void {
    if (this.closed) return;
    this.kickAll(reason);
    this.closed = true;
    this.clock.clearTimeout(this.timer);
  }

  private attach(side: Side, owner: HubSourceOwner): SourceHandle | undefined {
    if (this.closed || side.owner) return undefined;
    side.owner = owner;
    side.lastMediaAt = 0;
    side.healthySince = undefined;
    let attached = true;
    const mine = () => attached && side.owner === owner;
    return {
      push: (kind, timestamp, payload) => mine() && this.onMedia(side, kind, timestamp, payload),
      pushMetadata: (timestamp, payload) => {
        if (!mine()) return;
        side.metadata = payload;
        if (this.active === side) this.hubSource?.pushMetadata(timestamp, payload);
      },
      pushData: (timestamp, payload) => {
        if (mine() && this.active === side) this.hubSource?.pushData(timestamp, payload);
      },
      detach: (reason) => {
        if (!mine()) return;
        attached = false;
        this.onDetach(side, reason);
      },
      // Each side is one encoder; only the switch splices.
      splice: () => undefined,
    };
  }

  private other(side: Side): Side {
    return this.sides[0] === side ? this.sides[1] : this.sides[0];
  }

  private healthy(side: Side, now: number): boolean {
    return side.owner !== undefined && side.lastMediaAt > 0 && now - side.lastMediaAt < this.settings.afterMs;
  }

  /** Returns whether the payload is a coded frame, whether or not this side is active. */
  private onMedia(side: Side, kind: 'audio' | 'video', timestamp: number, payload: Buffer): boolean {
    if (payload.length === 0) return false;
    const now = this.clock.now();
    if (side.lastMediaAt === 0 || now - side.lastMediaAt >= this.settings.afterMs) side.healthySince = now;
    side.lastMediaAt = now;
    const video = kind === 'video' ? parseVideoTag(payload) : undefined;
    const audio = video ? undefined : parseAudioTag(payload);
    const isHeader = video ? video.isSequenceHeader : audio!.isSequenceHeader;
    if (isHeader) {
      if (kind === 'video') side.videoHeader = payload;
      else side.audioHeader = payload;
    }
    const joinPoint = video ? video.isKeyframe : !isHeader && side.videoHeader === undefined;
    this.route(side, kind, timestamp, payload, isHeader, joinPoint, now);
    return video ? isCodedVideo(video) : isCodedAudio(audio!);
  }

  /** Sends a side's message to the hub when that side is active, or switches to it when due. */
  private route(side: Side, kind: 'audio' | 'video', timestamp: number, payload: Buffer, isHeader: boolean, joinPoint: boolean, now: number): void {
    if (!this.active) {
      // The first source (or the first after both were gone) starts at once: the hub makes readers wait for a keyframe.
      if (side === this.sides[0] || !this.healthy(this.other(side), now)) this.activate(side, 'first');
    }
    if (this.active === side && side.needsSplice) {
      // The same input, a new session: wait for its first join point, then splice it in.
      if (!joinPoint) return;
      side.needsSplice = false;
      this.switchTo(side, 'disconnected', timestamp);
      this.hubSource?.push(kind, timestamp, payload);
      return;
    }
    if (this.active === side) {
      if (kind === 'audio' && !isHeader && side.audioFrom !== undefined) {
        if (timestamp < side.audioFrom) return;
        side.audioFrom = undefined;
      }
      this.hubSource?.push(kind, timestamp, payload);
      return;
    }
    if (side === this.sides[0] && !this.pending && now < this.startUntil) this.pending = { side, reason: 'revert' };
    if (this.pending?.side === side && joinPoint) {
      this.switchTo(side, this.pending.reason, timestamp);
      this.hubSource?.push(kind, timestamp, payload);
    }
  }

  private activate(side: Side, _why: 'first'): void {
    this.hubSource ??= this.hub.attachSource({ kick: (reason) => this.kickAll(reason) });
    this.active = side;
    this.pending = undefined;
    this.startUntil = side === this.sides[0] ? 0 : this.clock.now() + this.settings.afterMs;
  }

  /**
   * Splices `side` in at its keyframe: headers and metadata first, as a new reader would get
   * them, stamped with the keyframe's time (their own may be minutes old; the hub anchors
   * its timeline on the keyframe and gives them the keyframe's output time either way).
   */
  private switchTo(side: Side, reason: 'stalled' | 'disconnected' | 'revert', at: number): void {
    const from = this.active;
    this.hubSource ??= this.hub.attachSource({ kick: (r) => this.kickAll(r) });
    const source = this.hubSource;
    if (!source) return;
    source.splice();
    side.needsSplice = false;
    side.audioFrom = at;
    if (side.metadata) source.pushMetadata(at, side.metadata);
    if (side.videoHeader) source.push('video', at, side.videoHeader);
    if (side.audioHeader) source.push('audio', at, side.audioHeader);
    this.active = side;
    this.pending = undefined;
    // The same input back with a new session is no switch to announce.
    if (from === side) return;
    this.switches += 1;
    const type = reason === 'revert' ? 'input.revert' : 'input.failover';
    this.logger.warn({ from: from?.name ?? null, to: side.name, reason }, type === 'input.revert' ? 'back to the primary input' : 'failing over to the other input');
    this.events({ type, flowId: this.flowId, from: from?.name ?? null, to: side.name, reason });
  }

  private onDetach(side: Side, reason: string): void {
    side.owner = undefined;
    side.healthySince = undefined;
    side.metadata = side.videoHeader = side.audioHeader = undefined;
    if (this.pending?.side === side) this.pending = undefined;
    if (!this.sides.some((s) => s.owner)) {
      // Both gone: the flow's readers see the end, as with a single input.
      this.active = undefined;
      this.pending = undefined;
      this.hubSource?.detach(reason);
      this.hubSource = undefined;
      return;
    }
    if (this.active === side) {
      // The readers keep waiting, attached, for the other side's next keyframe, or for this
      // side's next publisher, whichever comes first with a keyframe.
      side.needsSplice = true;
      this.pending = { side: this.other(side), reason: 'disconnected' };
      this.logger.info({ input: side.name, reason }, 'active input disconnected; waiting for the other');
    }
  }

  /** Looks at the sides' health a few times per afterMs. */
  private schedule(): void {
    if (this.closed) return;
    this.timer = this.clock.setTimeout(() => {
      this.check();
      this.schedule();
    }, Math.max(50, Math.min(250, this.settings.afterMs / 4)));
  }

  private check(): void {
    const active = this.active;
    if (!active) return;
    const now = this.clock.now();
    if (this.pending) {
      // A stalled input that recovers before the switch keeps its place; a primary that falters again is not reverted to.
      const { side, reason } = this.pending;
      if ((reason === 'stalled' && this.healthy(active, now)) || !this.healthy(side, now)) this.pending = undefined;
      return;
    }
    const other = this.other(active);
    if (!this.healthy(active, now) && this.healthy(other, now)) {
      this.pending = { side: other, reason: active.owner ? 'stalled' : 'disconnected' };
      return;
    }
    const primary = this.sides[0];
    if (this.settings.revert && active !== primary && this.healthy(primary, now) && primary.healthySince !== undefined && now - primary.healthySince >= this.settings.revertAfterMs) {
      this.pending = { side: primary, reason: 'revert' };
    }
  }

  private kickAll(reason: string): void {
    if (this.closed) return;
    for (const side of this.sides) side.owner?.kick(reason);
  }
}
