/**
 * One 90 kHz timeline for every elementary stream of the program: PTS and DTS are 33-bit
 * counters (ISO/IEC 13818-1, 2.4.3.7) that wrap every 26.5 hours. All streams share one
 * unwrapping reference, so audio and video stay aligned even when the wrap falls between
 * them, and one base (the first timestamp seen), so the first tag is near 0 ms and the
 * output keeps counting up across wraps.
 */

const WRAP = 2 ** 33;
const HALF = 2 ** 32;

export class PtsTimeline {
  private last: number | undefined;
  private base: number | undefined;

  /** Raw 33-bit ticks to unwrapped ticks: the value nearest the last one seen. */
  unwrap(raw: number): number {
    if (this.last === undefined) {
      this.last = raw;
      this.base = raw;
      return raw;
    }
    let delta = (raw - this.last) % WRAP;
    if (delta >= HALF) delta -= WRAP;
    else if (delta < -HALF) delta += WRAP;
    this.last += delta;
    return this.last;
  }

  /**
   * Unwrapped ticks to milliseconds since the base. A stream whose first timestamp is a
   * little before the base (audio muxed ahead of video) is held at 0 rather than going
   * negative, which FLV cannot carry.
   */
  toMs(ticks: number): number {
    return Math.max(0, this.toMsSigned(ticks));
  }

  toMsSigned(ticks: number): number {
    return Math.round((ticks - (this.base ?? ticks)) / 90);
  }
}
