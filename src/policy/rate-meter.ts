/**
 * Bytes per second over a sliding window of one-second buckets. Pure: the caller passes
 * the time, so tests need no clock. Cost per sample is O(1); memory is one number per
 * second of window.
 */
export class RateMeter {
  private readonly buckets: number[];
  private readonly stamps: number[];
  /** The second of the first sample since the start or reset: a young meter averages over the seconds it has. */
  private firstSecond: number | undefined;

  constructor(private readonly windowSeconds = 5) {
    // One bucket more than the window: the current, still filling second has its own.
    this.buckets = new Array<number>(windowSeconds + 1).fill(0);
    this.stamps = new Array<number>(windowSeconds + 1).fill(-1);
  }

  add(bytes: number, nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    this.firstSecond ??= second;
    const i = second % this.buckets.length;
    if (this.stamps[i] !== second) {
      this.stamps[i] = second;
      this.buckets[i] = 0;
    }
    this.buckets[i]! += bytes;
  }

  /**
   * Average bits per second over the completed seconds of the window, or of the seconds
   * since the first sample when that is shorter (a connection that just started is not
   * averaged with seconds before it existed).
   */
  bitsPerSecond(nowMs: number): number {
    const current = Math.floor(nowMs / 1000);
    let bytes = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      const stamp = this.stamps[i]!;
      if (stamp < current && stamp >= current - this.windowSeconds) bytes += this.buckets[i]!;
    }
    const seconds = this.firstSecond === undefined ? this.windowSeconds : Math.min(this.windowSeconds, Math.max(1, current - this.firstSecond));
    return Math.round((bytes * 8) / seconds);
  }

  /** Forgets every sample: a new connection starts its own measure. */
  reset(): void {
    this.buckets.fill(0);
    this.stamps.fill(-1);
    this.firstSecond = undefined;
  }
}
