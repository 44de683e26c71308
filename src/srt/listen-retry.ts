import type { Logger } from 'pino';
import type { ConnectionReport } from '../core/flow-parts.js';
import { Backoff } from '../lib/backoff.js';
import type { SrtRuntime } from './runtime.js';

/** The first retry is soon: a listener of ours a reload closes frees the port within milliseconds. */
const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 5_000;

/**
 * Keeps trying to listen on an SRT port of a flow's own until it succeeds or the owner
 * stops. A port can be taken for a while: by another process, or by a listener of ours
 * that the same reload closes after starting this one (a port handed from one flow, input
 * or output to another). Giving up at the first failure would leave nobody listening
 * until the next restart.
 */
export class ListenRetry {
  private timer: NodeJS.Timeout | undefined;
  private readonly backoff = new Backoff({ initialDelayMs: FIRST_RETRY_MS, maxDelayMs: MAX_RETRY_MS });
  private stopped = false;
  /** Failed attempts since the last success; the first one is logged as an error, the rest at debug. */
  private failures = 0;
  /** Kept after a success, as other connections keep theirs: what went wrong last. */
  private lastError: string | undefined;
  private lastErrorAt: Date | undefined;
  private nextAttemptAt: Date | undefined;

  /** `tryListen` throws when the port cannot be opened. */
  constructor(
    private readonly runtime: SrtRuntime,
    private readonly port: number,
    private readonly tryListen: () => void,
    private readonly logger: Logger,
  ) {}

  start(): void {
    // Replacing a listener on the same port (a config change): the old one may still be closing.
    this.runtime.onPortFree(this.port, () => this.attempt());
  }

  /** The port could not be opened at the last attempt; the next one is scheduled. */
  get failing(): boolean {
    return this.failures > 0;
  }

  /** The retries as a connection report tells them. */
  report(): Pick<ConnectionReport, 'consecutiveFailures' | 'lastError' | 'lastErrorAt' | 'nextAttemptAt'> {
    return { consecutiveFailures: this.failures, lastError: this.lastError, lastErrorAt: this.lastErrorAt, nextAttemptAt: this.nextAttemptAt };
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.nextAttemptAt = undefined;
  }

  private attempt(): void {
    this.timer = undefined;
    this.nextAttemptAt = undefined;
    if (this.stopped) return;
    try {
      this.tryListen();
      if (this.failures > 0) this.logger.info({ port: this.port, failures: this.failures }, 'srt port open after retrying');
      this.failures = 0;
      return;
    } catch (err) {
      this.failures += 1;
      this.lastError = (err as Error).message;
      this.lastErrorAt = new Date();
    }
    const delay = this.backoff.next();
    this.nextAttemptAt = new Date(Date.now() + delay);
    const log = { err: this.lastError, retryInMs: delay };
    if (this.failures === 1) this.logger.error(log, 'cannot listen for srt; retrying');
    else this.logger.debug(log, 'cannot listen for srt yet');
    this.timer = setTimeout(() => this.attempt(), delay);
    this.timer.unref();
  }
}
