/**
 * At most `limit` requests per key in any `windowMs`: a sliding log per key, pruned as
 * it goes, so memory is bounded by the keys seen in the last window. Pure; time is given.
 */
export class RequestRateLimiter {
  private readonly log = new Map<string, number[]>();

  constructor(
    private limit: number,
    private readonly windowMs = 60_000,
  ) {}

  setLimit(limit: number): void {
    this.limit = limit;
  }

  /** Counts the request and says whether it is within the limit (a refused one is not counted). */
  allow(key: string, now: number): boolean {
    const since = now - this.windowMs;
    const times = (this.log.get(key) ?? []).filter((t) => t > since);
    const ok = times.length < this.limit;
    if (ok) times.push(now);
    if (times.length > 0) this.log.set(key, times);
    else this.log.delete(key);
    if (this.log.size > 10_000) this.prune(since);
    return ok;
  }

  private prune(since: number): void {
    for (const [key, times] of this.log) if ((times.at(-1) ?? 0) <= since) this.log.delete(key);
  }
}
