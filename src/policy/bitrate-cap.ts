import { RateMeter } from './rate-meter.js';

export interface BitrateCapOptions {
  /** Allowed bits per second. */
  maxBitrate: number;
  /** Fraction above the cap that is still fine (0.1: 10%). */
  tolerance: number;
  /** How long the rate may stay above cap + tolerance before it counts as exceeded. */
  graceMs: number;
  /** Sliding window the rate is measured over, in whole seconds. */
  windowSeconds: number;
}

export type BitrateVerdict = { exceeded: false } | { exceeded: true; measuredBps: number; allowedBps: number };

/**
 * Enforces a publisher bitrate cap on the bytes it actually sends. Pure (time is passed
 * in): the rate over the last complete `windowSeconds` is compared with the cap plus its
 * tolerance once per second; only a rate that stays above it for `graceMs` is a
 * violation, so keyframe bursts of a stream under the cap never trip it.
 */
export class BitrateCap {
  private readonly meter: RateMeter;
  private overSince: number | undefined;
  private lastCheckedSecond = -1;

  constructor(private readonly options: BitrateCapOptions) {
    this.meter = new RateMeter(options.windowSeconds);
  }

  get allowedBps(): number {
    return Math.round(this.options.maxBitrate * (1 + this.options.tolerance));
  }

  add(bytes: number, nowMs: number): BitrateVerdict {
    this.meter.add(bytes, nowMs);
    const second = Math.floor(nowMs / 1000);
    if (second === this.lastCheckedSecond) return { exceeded: false };
    this.lastCheckedSecond = second;
    const measuredBps = this.meter.bitsPerSecond(nowMs);
    if (measuredBps <= this.allowedBps) {
      this.overSince = undefined;
      return { exceeded: false };
    }
    this.overSince ??= nowMs;
    if (nowMs - this.overSince < this.options.graceMs) return { exceeded: false };
    this.overSince = nowMs;
    return { exceeded: true, measuredBps, allowedBps: this.allowedBps };
  }

  measuredBps(nowMs: number): number {
    return this.meter.bitsPerSecond(nowMs);
  }
}
