/**
 * RTMP timestamps are 32-bit milliseconds and wrap after about 49.7 days. This turns the
 * wire values of one connection into a monotonic-looking number line: a jump backwards by
 * more than half the range is taken as a wrap, smaller steps back (interleaving, encoder
 * quirks) are passed through for the hub to clamp.
 */
export class TimestampUnwrapper {
  private epoch = 0;
  private last: number | undefined;

  unwrap(wire: number): number {
    if (this.last !== undefined) {
      if (wire < this.last && this.last - wire > 0x8000_0000) this.epoch += 0x1_0000_0000;
      else if (wire > this.last && wire - this.last > 0x8000_0000 && this.epoch > 0) this.epoch -= 0x1_0000_0000;
    }
    this.last = wire;
    return this.epoch + wire;
  }
}
