import type { Logger } from 'pino';
import { Backoff } from '../lib/backoff.js';
import type { Clock } from '../lib/clock.js';
import { describeExit, FfmpegProcess, type FfmpegExit } from './process.js';
import type { FfmpegProgress } from './progress.js';

/**
 * What the supervisor sees. `starting`: spawned, no progress yet. `running`: progress is
 * moving. `backoff`: waiting to start again after a failure. `stopping`: asked to stop.
 * `finished`: ffmpeg ended on its own, successfully (its input ran out). `failed`: out of
 * restarts.
 */
export type FfmpegState = 'stopped' | 'starting' | 'running' | 'backoff' | 'stopping' | 'finished' | 'failed';

const ALLOWED: Record<FfmpegState, readonly FfmpegState[]> = {
  stopped: ['starting'],
  starting: ['running', 'backoff', 'stopping', 'finished', 'failed'],
  running: ['backoff', 'stopping', 'finished', 'failed'],
  backoff: ['starting', 'stopped', 'failed'],
  stopping: ['stopped'],
  finished: ['starting'],
  failed: ['starting'],
};

export interface FfmpegSupervisorOptions {
  path(): string;
  /**
   * The arguments of the next run (a files task computes where to resume), or undefined
   * when nothing is left to run (a playlist whose schedule is over): the supervisor finishes.
   */
  args(): Promise<readonly string[] | undefined>;
  /** URLs whose keys and tokens are hidden in what ffmpeg says (its log lines, errors). */
  secrets: readonly string[];
  clock: Clock;
  logger: Logger;
  restart: {
    initialDelayMs: number;
    maxDelayMs: number;
    /** Fraction of each delay that is random. */
    jitter: number;
    /** Failed runs in a row before giving up; undefined: never give up. */
    maxRestarts: number | undefined;
  };
  /** No progress (media time or bytes) for this long: the run is killed and counts as failed. */
  staleMs: number;
  /**
   * A live source has no end of its own: with this set, ffmpeg ending successfully means
   * the source went away (a publisher that dropped, a stream that stopped), and the run
   * counts as failed and starts again after this many ms instead of `finished`.
   */
  sourceEndedRetryMs?: number;
  onState?(state: FfmpegState, previous: FfmpegState, error: string | undefined): void;
  onExit?(exit: FfmpegExit, attempt: number): void;
}

export interface FfmpegSupervisorReport {
  desired: 'running' | 'stopped';
  state: FfmpegState;
  attempts: number;
  consecutiveFailures: number;
  lastError: string | undefined;
  progress: FfmpegProgress | undefined;
  log: string[];
  nextAttemptAt: Date | undefined;
}

/** A run that made progress this long resets the failure count and the backoff. */
const HEALTHY_AFTER_MS = 30_000;

/**
 * Keeps one ffmpeg doing its job while that is wanted: restarts it after failures with
 * exponential backoff and jitter (up to maxRestarts), kills a run whose progress stalls,
 * stops it with SIGINT then SIGKILL, and keeps desired and observed state apart.
 */
export class FfmpegSupervisor {
  private desired: 'running' | 'stopped' = 'stopped';
  private state: FfmpegState = 'stopped';
  private proc: FfmpegProcess | undefined;
  private readonly backoff: Backoff;
  private attempts = 0;
  private failures = 0;
  private lastError: string | undefined;
  private lastLog: string[] = [];
  private progress: FfmpegProgress | undefined;
  private timer: unknown;
  private watchdog: unknown;
  private nextAttemptAt: number | undefined;
  private lastAdvanceAt = 0;
  private runningSince: number | undefined;
  private stallReason: string | undefined;
  /** Resolved when the current run has exited (stop() waits through them). */
  private exitWaiters: (() => void)[] = [];

  constructor(private readonly options: FfmpegSupervisorOptions) {
    this.backoff = new Backoff(options.restart);
  }

  start(): void {
    this.desired = 'running';
    if (this.state === 'stopped' || this.state === 'finished' || this.state === 'failed') {
      this.failures = 0;
      this.backoff.reset();
      void this.spawn();
    }
  }

  /** Stops the run (SIGINT, then SIGKILL) and any pending restart. */
  stop(): void {
    this.desired = 'stopped';
    this.options.clock.clearTimeout(this.timer);
    this.nextAttemptAt = undefined;
    if (this.proc) {
      this.setState('stopping');
      this.proc.stop();
    } else if (this.state === 'backoff' || this.state === 'starting') {
      this.setState('stopped');
    }
  }

  /** Resolves once no ffmpeg of this supervisor runs (after stop(), its clean exit or the SIGKILL). */
  whenIdle(): Promise<void> {
    if (!this.proc) return Promise.resolve();
    return new Promise((resolve) => this.exitWaiters.push(resolve));
  }

  report(): FfmpegSupervisorReport {
    return {
      desired: this.desired,
      state: this.state,
      attempts: this.attempts,
      consecutiveFailures: this.failures,
      lastError: this.lastError,
      progress: this.progress,
      log: this.proc?.log() ?? this.lastLog,
      nextAttemptAt: this.nextAttemptAt === undefined ? undefined : new Date(this.nextAttemptAt),
    };
  }

  private async spawn(): Promise<void> {
    this.setState('starting');
    let args: readonly string[] | undefined;
    try {
      args = await this.options.args();
    } catch (err) {
      this.onFailure(`cannot prepare the ffmpeg run: ${(err as Error).message}`);
      return;
    }
    if (this.desired !== 'running') {
      this.setState('stopped');
      return;
    }
    if (args === undefined) {
      this.setState('finished');
      return;
    }
    this.attempts += 1;
    const attempt = this.attempts;
    this.progress = undefined;
    this.stallReason = undefined;
    this.lastAdvanceAt = this.options.clock.now();
    const proc = new FfmpegProcess({
      path: this.options.path(),
      args,
      secrets: this.options.secrets,
      clock: this.options.clock,
      progress: (p) => this.onProgress(p),
      exit: (exit) => this.onExit(proc, exit, attempt),
    });
    this.proc = proc;
    proc.start();
    this.armWatchdog();
  }

  private onProgress(p: FfmpegProgress): void {
    const before = this.progress;
    this.progress = p;
    const now = this.options.clock.now();
    if (!before || p.outTimeMs > before.outTimeMs || p.totalSize > before.totalSize) this.lastAdvanceAt = now;
    if (this.state === 'starting' && (p.outTimeMs > 0 || p.totalSize > 0)) {
      this.runningSince = now;
      this.setState('running');
    }
    if (this.runningSince !== undefined && now - this.runningSince >= HEALTHY_AFTER_MS && this.failures > 0) {
      this.failures = 0;
      this.backoff.reset();
    }
  }

  private armWatchdog(): void {
    const { clock, staleMs } = this.options;
    const period = Math.min(1000, staleMs);
    this.watchdog = clock.setTimeout(() => {
      this.watchdog = undefined;
      if (!this.proc || this.state === 'stopping') return;
      if (clock.now() - this.lastAdvanceAt >= staleMs) {
        this.stallReason = `ffmpeg made no progress for ${staleMs} ms; killed`;
        this.options.logger.warn({ staleMs }, 'ffmpeg stalled; killing it');
        this.proc.kill();
        return;
      }
      this.armWatchdog();
    }, period);
  }

  private onExit(proc: FfmpegProcess, exit: FfmpegExit, attempt: number): void {
    if (this.proc !== proc) return;
    this.proc = undefined;
    for (const resolve of this.exitWaiters.splice(0)) resolve();
    this.options.clock.clearTimeout(this.watchdog);
    this.runningSince = undefined;
    this.lastLog = exit.log;
    this.options.onExit?.(exit, attempt);
    if (this.desired === 'stopped') {
      this.setState('stopped');
      return;
    }
    if (exit.code === 0 && !exit.stopped && this.stallReason === undefined) {
      const retryMs = this.options.sourceEndedRetryMs;
      if (retryMs === undefined) this.setState('finished');
      else this.onFailure('the source ended (ffmpeg exited 0)', retryMs);
      return;
    }
    this.onFailure(this.stallReason ?? describeExit(exit, undefined));
  }

  private onFailure(error: string, delayMs?: number): void {
    this.lastError = error;
    this.failures += 1;
    const { maxRestarts } = this.options.restart;
    if (maxRestarts !== undefined && this.failures > maxRestarts) {
      this.setState('failed', error);
      return;
    }
    const delay = delayMs ?? this.backoff.next();
    this.nextAttemptAt = this.options.clock.now() + delay;
    this.setState('backoff', error);
    this.timer = this.options.clock.setTimeout(() => {
      this.nextAttemptAt = undefined;
      if (this.desired === 'running') void this.spawn();
    }, delay);
  }

  private setState(next: FfmpegState, error?: string): void {
    const previous = this.state;
    if (next === previous) return;
    if (!ALLOWED[previous].includes(next)) {
      this.options.logger.error({ from: previous, to: next }, 'ffmpeg supervisor transition not allowed; forcing it');
    }
    this.state = next;
    this.options.onState?.(next, previous, error);
  }
}
