/** Above maxBacklog without draining for this long: the destination has stopped reading. */
export const STALL_MS = 15_000;

/**
 * Tells a destination that has stopped reading (a hung ingest, a zero window: its TCP
 * connection stays up and it takes nothing) from one that is only slow or still taking a
 * startup burst. Fed the connection's backlog before each message: stalled once the
 * backlog has stayed above `maxBacklog` for STALL_MS without reaching a new low. A
 * destination that reads at all keeps lowering it (a large cached GOP sent at connect
 * drains for a while above maxBacklog, and is not a stall).
 */
export class StallWatch {
  /** Since when the backlog has been above the limit without a new low. */
  private since: number | undefined;
  private lowest = Infinity;

  constructor(private readonly maxBacklog: number) {}

  /** True once, when the destination is found stalled; the watch then starts over. */
  observe(backlog: number, now: number): boolean {
    if (backlog <= this.maxBacklog) {
      this.since = undefined;
      return false;
    }
    if (this.since === undefined || backlog < this.lowest) {
      this.since = now;
      this.lowest = backlog;
      return false;
    }
    if (now - this.since < STALL_MS) return false;
    this.since = undefined;
    return true;
  }
}
