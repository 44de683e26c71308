import type { Logger } from 'pino';

/**
 * Logs a recurring event (a refused connection) at most once per interval per key, with
 * how many were not logged since: an attack must not turn into a log flood.
 */
export class RateLimitedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  warn(key: string, fields: Record<string, unknown>, message: string): void {
    const now = this.now();
    const entry = this.last.get(key);
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed += 1;
      return;
    }
    this.logger.warn({ ...fields, ...(entry && entry.suppressed > 0 && { suppressed: entry.suppressed }) }, message);
    this.last.set(key, { at: now, suppressed: 0 });
    // Forget old keys so many distinct sources cannot grow the map without bound.
    if (this.last.size > 1_000) {
      for (const [k, v] of this.last) if (now - v.at >= this.intervalMs) this.last.delete(k);
    }
  }
}
