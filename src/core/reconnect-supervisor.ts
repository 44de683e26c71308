import type { Logger } from 'pino';
import { Backoff } from '../lib/backoff.js';
import type { Clock } from '../lib/clock.js';
import { canTransition, type ConnectionCounters, type ConnectionStatus } from './connection-status.js';
import type { StatusListener } from './flow-events.js';

export interface ReconnectPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
  /** A connection that stayed up this long resets the backoff to its initial delay. */
  resetAfterMs: number;
  /** Consecutive failed attempts before the status says failed_to_(re)connect. */
  failAfter: number;
  /** Stop trying after failAfter failures instead of continuing at the cap. */
  giveUp: boolean;
}

export interface AttemptHandlers {
  /** The connection is up and carrying (publish or play accepted). */
  ready(): void;
  /** The attempt or connection ended; undefined when we closed it ourselves. */
  closed(error: Error | undefined): void;
}

/** Starts one connection attempt; the returned handle closes it. */
export type Connect = (handlers: AttemptHandlers) => { close(reason: string): void };

/**
 * Keeps one connection up while it is wanted: attempts, backs off with jitter between
 * failures, resets after a stable period, and reports status and counters. What the
 * connection is (RTMP push, RTMP pull, later SRT) is the caller's business.
 */
export class ReconnectSupervisor {
  private current: ConnectionStatus = 'new_configuration_accepted';
  /** Told of every status change (webhooks); must not throw or block. */
  onStatus: StatusListener | undefined;
  readonly counters: ConnectionCounters = {
    attempts: 0,
    reconnects: 0,
    consecutiveFailures: 0,
    lastError: undefined,
    lastErrorAt: undefined,
    connectedAt: undefined,
    nextAttemptAt: undefined,
  };
  private readonly backoff: Backoff;
  private wanted = false;
  private closedForGood = false;
  private everConnected = false;
  private attempt: { close(reason: string): void } | undefined;
  private attemptSerial = 0;
  private readyAt: number | undefined;
  private timer: unknown;

  constructor(
    private readonly policy: ReconnectPolicy,
    private readonly connect: Connect,
    private readonly clock: Clock,
    private readonly logger: Logger,
    random: () => number = Math.random,
  ) {
    this.backoff = new Backoff(policy, random);
  }

  get status(): ConnectionStatus {
    return this.current;
  }

  get isConnected(): boolean {
    return this.readyAt !== undefined;
  }

  /** Connect now if not connected or connecting. */
  want(): void {
    if (this.closedForGood || this.wanted) return;
    this.wanted = true;
    // Trying again after a wait for input: not idle any more, whatever the first attempts give.
    if (this.current === 'idle') this.setStatus('reconnecting');
    this.startAttempt();
  }

  /** Disconnect and stop retrying until wanted again; status becomes idle. */
  unwant(reason: string): void {
    if (!this.wanted) return;
    this.wanted = false;
    this.cancelTimer();
    const attempt = this.attempt;
    this.attempt = undefined;
    this.readyAt = undefined;
    this.counters.connectedAt = undefined;
    attempt?.close(reason);
    this.setStatus('idle');
  }

  /** Final: nothing is attempted after this. Idempotent. */
  close(reason: string): void {
    if (this.closedForGood) return;
    this.closedForGood = true;
    this.wanted = false;
    this.cancelTimer();
    const attempt = this.attempt;
    this.attempt = undefined;
    attempt?.close(reason);
  }

  private startAttempt(): void {
    this.timer = undefined;
    this.counters.nextAttemptAt = undefined;
    if (!this.wanted) return;
    this.counters.attempts += 1;
    const serial = ++this.attemptSerial;
    const isCurrent = () => serial === this.attemptSerial && !this.closedForGood;
    try {
      this.attempt = this.connect({
        ready: () => {
          if (isCurrent()) this.onReady();
        },
        closed: (error) => {
          if (isCurrent()) this.onClosed(error);
        },
      });
    } catch (err) {
      // An attempt that cannot even start (options the protocol refuses) fails like any
      // other, later: thrown from here, it would reach whoever wanted the connection (a
      // publisher going live) and break that instead of this one connection.
      const error = err instanceof Error ? err : new Error(String(err));
      queueMicrotask(() => {
        if (isCurrent()) this.onClosed(error);
      });
    }
  }

  private onReady(): void {
    this.readyAt = this.clock.now();
    this.counters.connectedAt = new Date(this.readyAt);
    this.counters.consecutiveFailures = 0;
    if (this.everConnected) this.counters.reconnects += 1;
    this.setStatus(this.everConnected ? 'reconnected' : 'connected');
    this.everConnected = true;
  }

  private onClosed(error: Error | undefined): void {
    this.attempt = undefined;
    this.attemptSerial += 1;
    const readyAt = this.readyAt;
    this.readyAt = undefined;
    this.counters.connectedAt = undefined;
    if (error) {
      this.counters.lastError = error.message;
      this.counters.lastErrorAt = new Date(this.clock.now());
    }
    if (!this.wanted) return;
    if (readyAt !== undefined) {
      // A connection that carried media and then dropped: not a failed attempt.
      if (this.clock.now() - readyAt >= this.policy.resetAfterMs) this.backoff.reset();
      this.setStatus('reconnecting');
      this.logger.warn({ err: error?.message }, 'connection lost; reconnecting');
    } else {
      this.counters.consecutiveFailures += 1;
      if (this.counters.consecutiveFailures >= this.policy.failAfter) {
        this.setStatus(this.everConnected ? 'failed_to_reconnect' : 'failed_to_connect');
        if (this.policy.giveUp) {
          this.wanted = false;
          this.logger.error({ err: error?.message, attempts: this.counters.attempts }, 'giving up after repeated failures');
          return;
        }
      }
    }
    const delay = this.backoff.next();
    this.counters.nextAttemptAt = new Date(this.clock.now() + delay);
    // Why it failed, where operators look: the backoff keeps this to a line every 30 s at most.
    if (readyAt === undefined) this.logger.warn({ err: error?.message, failures: this.counters.consecutiveFailures, retryInMs: delay }, 'connection attempt failed');
    else this.logger.debug({ delayMs: delay }, 'next attempt scheduled');
    this.timer = this.clock.setTimeout(() => this.startAttempt(), delay);
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.counters.nextAttemptAt = undefined;
  }

  private setStatus(next: ConnectionStatus): void {
    if (!canTransition(this.current, next)) {
      throw new Error(`connection status cannot go from ${this.current} to ${next}`);
    }
    const previous = this.current;
    this.current = next;
    if (next === previous) return;
    this.logger.info({ status: next, previous }, 'status changed');
    this.onStatus?.(next, previous, this.counters.lastError);
  }
}
