import { writeFileAtomic } from './atomic-write.js';
import { Backoff } from './backoff.js';

/** After a failed write, the next is tried this much later, doubling up to RETRY_MAX_MS. */
const RETRY_INITIAL_MS = 5_000;
const RETRY_MAX_MS = 60_000;

/**
 * Keeps a state file in step with memory: writes are atomic and one at a time, and a
 * write asked for while one runs is made once, after it, rendering the state of that
 * moment, so the file always ends with the latest state and never falls behind by more
 * than one write, however often it is asked for. A failed write (a full or read-only
 * disk) is tried again by itself until one succeeds: the state may not change again for
 * a long time, and the file would stay behind until it did.
 */
export class LatestFileWriter {
  private writing: Promise<void> = Promise.resolve();
  private queued: Promise<void> | undefined;
  /** Whether the last write failed (a run of failures is told once), and the wait before the next try. */
  private failing = false;
  private readonly retryBackoff: Backoff;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    readonly path: string,
    private readonly mode: number,
    private readonly render: () => string,
    private readonly onError: (err: Error) => void,
    retryInitialMs = RETRY_INITIAL_MS,
  ) {
    this.retryBackoff = new Backoff({ initialDelayMs: retryInitialMs, maxDelayMs: RETRY_MAX_MS, jitter: 0 });
  }

  /** Resolves when the state as it is now (or later) is on disk; never rejects. */
  write(): Promise<void> {
    if (this.queued) return this.queued;
    this.queued = this.writing.then(async () => {
      this.queued = undefined;
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      try {
        await writeFileAtomic(this.path, this.render(), this.mode);
        this.failing = false;
        this.retryBackoff.reset();
      } catch (err) {
        // Told once per run of failures, not at every retry.
        if (!this.failing) this.onError(err as Error);
        this.failing = true;
        if (!this.stopped) {
          this.retryTimer = setTimeout(() => void this.write(), this.retryBackoff.next());
          this.retryTimer.unref();
        }
      }
    });
    this.writing = this.queued;
    return this.writing;
  }

  /** No retries after this (the owner is closing); writes asked for still happen. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** Resolves when the writes asked for so far are done. */
  settled(): Promise<void> {
    return this.writing;
  }
}
