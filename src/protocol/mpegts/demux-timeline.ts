/**
 * One 90 kHz timeline for every elementary stream of the program: PTS and DTS are 33-bit
 * counters (ISO/IEC 13818-1, 2.4.3.7) that wrap every 26.5 hours. All streams share one
 * unwrapping reference, so audio and video stay aligned even when the wrap falls between
 * them, and one base (the first timestamp seen), so the first tag is near 0 ms and the
 * output keeps counting up across wraps.
 */

const WRAP = 2 ** 33;
const HALF = 2 ** 32;

/**
 * A step between two timestamps of the program larger than this (either way) is a jump
 * of the source's clock, as ffmpeg judges it: streams of one program are muxed within a
 * second or two of each other, and PTS runs at most a few frames ahead of DTS.
 */
export const JUMP_TICKS = 10 * 90_000;

export class PtsTimeline {
  private lastRaw: number | undefined;
  private last = 0;
  private highest = 0;
  private base: number | undefined;

  /** `onJump` hears of each jump of the source's clock (for the operator's counters). */
  constructor(private readonly onJump: () => void = () => undefined) {}

  /**
   * Raw 33-bit ticks to unwrapped ticks: the value nearest the last one seen. After a jump
   * (an encoder behind a gateway restarted, a switcher cut to another clock) the timeline
   * continues from the highest value yet: clamping a jump back would hold every later frame at
   * one time, and passing a jump forward on would leave a gap as long as the jump.
   */
  unwrap(raw: number): number {
    if (this.lastRaw === undefined) {
      this.lastRaw = raw;
      this.last = raw;
      this.highest = raw;
      this.base = raw;
      return raw;
    }
    let delta = (raw - this.lastRaw) % WRAP;
    if (delta >= HALF) delta -= WRAP;
    else if (delta < -HALF) delta += WRAP;
    this.lastRaw = raw;
    if (Math.abs(delta) > JUMP_TICKS) {
      // From the highest value yet, not the last: the last packet may be of a track muxed
      // behind another, and no track may go back.
      this.last = this.highest;
      delta = 0;
      this.onJump();
    }
    this.last += delta;
    this.highest = Math.max(this.highest, this.last);
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
