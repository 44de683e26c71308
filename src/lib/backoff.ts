export interface BackoffOptions {
  initialDelayMs: number;
  maxDelayMs: number;
  /** Fraction of each delay that is randomised (0.2: the delay is 80%..100% of nominal). */
  jitter?: number;
}

/**
 * Exponential backoff with jitter: initial, 2x, 4x ... capped at max. Jitter spreads the
 * retries of many outputs that failed together (a destination restart) so they do not
 * hammer it in lockstep. `random` is injected for tests.
 */
export class Backoff {
  private attempt = 0;
  private readonly jitter: number;

  constructor(
    private readonly options: BackoffOptions,
    private readonly random: () => number = Math.random,
  ) {
    this.jitter = options.jitter ?? 0.2;
  }

  /** The delay before the next attempt; each call doubles the nominal delay up to the cap. */
  next(): number {
    const nominal = Math.min(this.options.maxDelayMs, this.options.initialDelayMs * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    return Math.round(nominal * (1 - this.jitter * this.random()));
  }

  reset(): void {
    this.attempt = 0;
  }
}
