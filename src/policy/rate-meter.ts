/**
 * Bytes per second over a sliding window of one-second buckets. Pure: the caller passes
 * the time, so tests need no clock. Cost per sample is O(1); memory is one number per
 * second of window.
 */
export class RateMeter {
  private readonly buckets: number[];
  private readonly stamps: number[];

  constructor(private readonly windowSeconds = 5) {
    // One bucket more than the window: the current, still filling second has its own.
    this.buckets = new Array<number>(windowSeconds + 1).fill(0);
    this.stamps = new Array<number>(windowSeconds + 1).fill(-1);
  }

  add(bytes: number, nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    const i = second % this.buckets.length;
    if (this.stamps[i] !== second) {
      this.stamps[i] = second;
      this.buckets[i] = 0;
    }
    this.buckets[i]! += bytes;
  }

  /** Average bits per second over the completed seconds of the window. */
  bitsPerSecond(nowMs: number): number {
    const current = Math.floor(nowMs / 1000);
    let bytes = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      const stamp = this.stamps[i]!;
      if (stamp < current && stamp >= current - this.windowSeconds) bytes += this.buckets[i]!;
    }
    return Math.round((bytes * 8) / this.windowSeconds);
  }
}
