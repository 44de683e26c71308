/**
 * Bytes per second over a sliding window of one-second buckets. Pure: the caller passes
 * the time, so tests need no clock. Cost per sample is O(1); memory is one number per
 * second of window.
 */
export class RateMeter {
  private readonly buckets: number[];
  private readonly stamps: number[];
  /** The time of the first sample since the start or reset: a young meter averages over the time it has. */
  private firstMs: number | undefined;

  constructor(private readonly windowSeconds = 5) {
    // One bucket more than the window: the current, still filling second has its own.
    this.buckets = new Array<number>(windowSeconds + 1).fill(0);
    this.stamps = new Array<number>(windowSeconds + 1).fill(-1);
  }

  add(bytes: number, nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    this.firstMs ??= nowMs;
    const i = second % this.buckets.length;
    if (this.stamps[i] !== second) {
      this.stamps[i] = second;
      this.buckets[i] = 0;
    }
    this.buckets[i]! += bytes;
  }

  /**
   * Average bits per second over the completed seconds of the window. A young meter (a
   * connection that just started) is not averaged with time before it existed: its first
   * second, which began before the first sample, counts only when it is all there is, and
   * then for the part of it after that sample.
   */
  bitsPerSecond(nowMs: number): number {
    const current = Math.floor(nowMs / 1000);
    // The completed seconds counted, [from, current), and the time they stand for.
    let from = current - this.windowSeconds;
    let seconds: number | undefined;
    const firstSecond = this.firstMs === undefined ? -Infinity : Math.floor(this.firstMs / 1000);
    if (firstSecond >= from) {
      const partial = this.firstMs! > firstSecond * 1000;
      // A partial first second is left out once a whole one follows it.
      from = partial && current - 1 > firstSecond ? firstSecond + 1 : firstSecond;
      if (partial && from === firstSecond) seconds = Math.max(0.1, firstSecond + 1 - this.firstMs! / 1000);
    }
    let bytes = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      const stamp = this.stamps[i]!;
      if (stamp < current && stamp >= from) bytes += this.buckets[i]!;
    }
    return Math.round((bytes * 8) / (seconds ?? Math.max(1, current - from)));
  }

  /** Forgets every sample: a new connection starts its own measure. */
  reset(): void {
    this.buckets.fill(0);
    this.stamps.fill(-1);
    this.firstMs = undefined;
  }
}
