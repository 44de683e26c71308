import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { TaskConfig } from '../config/schema-tasks.js';
import type { TaskEvent, TaskStatus } from '../core/flow-events.js';
import type { Clock } from '../lib/clock.js';
import { probeDurationSeconds } from '../ffmpeg/probe.js';
import { FfmpegSupervisor, type FfmpegState, type FfmpegSupervisorReport } from '../ffmpeg/supervisor.js';
import { concatScript, filesTaskArgs, liveTaskArgs, playOrder } from '../ffmpeg/task-args.js';
import type { FfmpegExit } from '../ffmpeg/process.js';

const ALLOWED: Record<TaskStatus, readonly TaskStatus[]> = {
  scheduled: ['running', 'completed', 'failed', 'stopped'],
  running: ['retrying', 'completed', 'failed', 'stopped'],
  retrying: ['running', 'completed', 'failed', 'stopped'],
  completed: [],
  failed: ['stopped'],
  stopped: [],
};

/** A files task repeating until its end time starts its next run this long after one ends. */
const NEXT_RUN_DELAY_MS = 1_000;
/** Tasks run this long without progress are killed and retried. */
const STALE_MS = 30_000;
/**
 * A live source that ended (its publisher dropped) before endTime: try again this soon,
 * not after retry.intervalSeconds, so a blip costs seconds of the destination's stream,
 * not a minute. It counts as a failed run: a source that is gone for good uses up
 * retry.count (a source still gone makes the next run fail to connect, or stall, and
 * wait the full interval).
 */
const SOURCE_ENDED_RETRY_S = 5;
/** setTimeout cannot wait longer than 2^31-1 ms; longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface TaskRunnerDeps {
  clock: Clock;
  /** Bound to the task (its `taskId`), so lines here do not repeat it. */
  logger: Logger;
  ffmpegPath(): string;
  ffprobePath(): string;
  /** Where a files task writes its concat list. */
  workDir: string;
  events(event: TaskEvent): void;
  /** The task's time is over (end time, or completed early): the scheduler removes it. */
  ended(taskId: string): void;
  /** Whether another task may start pushing now (limits.maxRunningTasks). */
  mayRun(taskId: string): boolean;
  /** This task stopped pushing for good (failed): a waiting task may take its slot. */
  slotFreed(): void;
  /** Shortens the retry interval in tests; identity in the daemon. */
  retryDelayMs?(intervalSeconds: number): number;
  /** Caps a files task's list shorter in tests (the daemon's cap holds days of short files). */
  maxPlaylistEntries?: number;
}

export interface TaskReport {
  status: TaskStatus;
  error: string | null;
  attempts: number;
  retriesLeft: number;
  startedAt: string | null;
  nextAttemptAt: string | null;
  progress: FfmpegSupervisorReport['progress'] | null;
  log: string[];
}

/** One task: waits for its start time, runs its ffmpeg under a supervisor, ends on time. */
export class TaskRunner {
  private status: TaskStatus = 'scheduled';
  private error: string | null = null;
  private supervisor: FfmpegSupervisor | undefined;
  private timer: unknown;
  private startedAt: number | undefined;
  private closed = false;
  /** The schedule has played the whole playlist: the task completes. */
  private playlistOver = false;
  private nextRun: unknown;
  /** Set while waiting for a free running slot. */
  waitingForSlot = false;

  constructor(
    /** Replaced in place when only its name or callback changes (see TaskScheduler.apply). */
    public config: TaskConfig,
    private readonly deps: TaskRunnerDeps,
  ) {}

  get id(): string {
    return this.config.id;
  }

  get isRunning(): boolean {
    return this.status === 'running' || this.status === 'retrying';
  }

  /** Schedules the start and the end; a task already in its window (a restart) starts at once. */
  start(): void {
    const now = this.deps.clock.now();
    const start = Date.parse(this.config.startTime);
    const end = Date.parse(this.config.endTime);
    if (now >= end) {
      this.finish('completed', null);
      return;
    }
    this.schedule(Math.max(start, now), () => this.begin());
  }

  /** Tries again to start a task that waited for a running slot. */
  retryStart(): void {
    if (this.waitingForSlot && !this.closed) this.begin();
  }

  /**
   * Stops the task (removed or changed, or the daemon stops); resolves when its ffmpeg has
   * exited (after SIGINT it unpublishes cleanly; SIGKILL follows a grace period).
   */
  close(reason: string): Promise<void> {
    if (!this.closed) {
      // A task still due to run or running ends here, and says so (a finished one keeps its status).
      if (this.isRunning || this.status === 'scheduled') this.transition('stopped', null);
      this.closed = true;
      this.deps.clock.clearTimeout(this.timer);
      this.deps.clock.clearTimeout(this.nextRun);
      this.supervisor?.stop();
      this.deps.logger.info({ reason }, 'task closed');
    }
    return this.supervisor?.whenIdle() ?? Promise.resolve();
  }

  report(): TaskReport {
    const sup = this.supervisor?.report();
    return {
      status: this.status,
      error: this.error,
      attempts: sup?.attempts ?? 0,
      retriesLeft: Math.max(0, this.config.retry.count - (sup?.consecutiveFailures ?? 0)),
      startedAt: this.startedAt === undefined ? null : new Date(this.startedAt).toISOString(),
      nextAttemptAt: sup?.nextAttemptAt?.toISOString() ?? null,
      progress: sup?.progress ?? null,
      log: sup?.log ?? [],
    };
  }

  private schedule(at: number, fn: () => void): void {
    const wait = at - this.deps.clock.now();
    this.deps.clock.clearTimeout(this.timer);
    if (wait > MAX_TIMER_MS) this.timer = this.deps.clock.setTimeout(() => this.schedule(at, fn), MAX_TIMER_MS);
    else this.timer = this.deps.clock.setTimeout(fn, Math.max(0, wait));
  }

  private begin(): void {
    if (this.closed) return;
    if (!this.deps.mayRun(this.id)) {
      this.waitingForSlot = true;
      this.error = 'waiting: limits.maxRunningTasks tasks are running';
      this.scheduleEnd();
      return;
    }
    this.waitingForSlot = false;
    this.error = null;
    this.startedAt = this.deps.clock.now();
    const interval = this.deps.retryDelayMs?.(this.config.retry.intervalSeconds) ?? this.config.retry.intervalSeconds * 1000;
    this.supervisor = new FfmpegSupervisor({
      path: this.deps.ffmpegPath,
      args: () => this.args(),
      secrets: [this.config.destination, ...(this.config.source.type === 'live' ? [this.config.source.url] : this.config.source.urls)],
      clock: this.deps.clock,
      logger: this.deps.logger,
      // A fixed interval (the task's retry settings), a little jitter so tasks that failed together spread out.
      restart: { initialDelayMs: interval, maxDelayMs: interval, jitter: 0.1, maxRestarts: this.config.retry.count },
      staleMs: STALE_MS,
      ...(this.config.source.type === 'live' && { sourceEndedRetryMs: this.deps.retryDelayMs?.(SOURCE_ENDED_RETRY_S) ?? SOURCE_ENDED_RETRY_S * 1000 }),
      onState: (state, _previous, error) => this.onSupervisorState(state, error),
      onExit: (exit, attempt) => this.onExit(exit, attempt),
    });
    this.supervisor.start();
    this.scheduleEnd();
  }

  private scheduleEnd(): void {
    this.schedule(Date.parse(this.config.endTime), () => {
      this.supervisor?.stop();
      this.finish('completed', null);
    });
  }

  /** ffmpeg's arguments for the next run; undefined when the playlist's schedule is over (the task completes). */
  private async args(): Promise<readonly string[] | undefined> {
    const { source } = this.config;
    const destination = { url: this.config.destination, tls: this.config.tls };
    if (source.type === 'live') return liveTaskArgs(source.url, destination);
    const durations = await Promise.all(source.urls.map((url) => probeDurationSeconds(this.deps.ffprobePath(), url)));
    const known = durations.every((d) => d !== undefined) ? (durations as number[]) : undefined;
    const now = this.deps.clock.now();
    const until = (Date.parse(this.config.endTime) - now) / 1000;
    // Resuming (a daemon restart, a retry): continue where the schedule says the playlist is.
    const skip = Math.max(0, (now - Date.parse(this.config.startTime)) / 1000);
    const order = playOrder(source, known, until, skip, this.deps.maxPlaylistEntries);
    if (order.length === 0) {
      this.playlistOver = true;
      return undefined;
    }
    await mkdir(this.deps.workDir, { recursive: true });
    const list = join(this.deps.workDir, `${this.id}.ffconcat`);
    await writeFile(list, concatScript(order));
    return filesTaskArgs(list, order, destination);
  }

  private onSupervisorState(state: FfmpegState, error: string | undefined): void {
    if (this.closed || this.status === 'completed') return;
    if (state === 'running') this.transition('running', null);
    // Each attempt is a step callbacks see: running, then retrying if it fails.
    else if (state === 'starting' && (this.status === 'scheduled' || this.status === 'retrying')) this.transition('running', null, 1);
    else if (state === 'backoff') this.transition('retrying', error ?? null);
    else if (state === 'failed') this.transition('failed', error ?? null);
    else if (state === 'finished') this.onRunFinished();
  }

  /**
   * ffmpeg played its whole list. A list that repeats until endTime is written for a
   * bounded stretch (MAX_ENTRIES): while the window lasts and the playlist is not over,
   * the next run goes on from where the schedule says (a second later, so that a list
   * ffmpeg rejects at once cannot spin).
   */
  private onRunFinished(): void {
    const source = this.config.source;
    if (source.type === 'files' && source.repeat < 0 && !this.playlistOver && this.deps.clock.now() < Date.parse(this.config.endTime)) {
      this.deps.clock.clearTimeout(this.nextRun);
      this.nextRun = this.deps.clock.setTimeout(() => {
        if (!this.closed) this.supervisor?.start();
      }, NEXT_RUN_DELAY_MS);
      return;
    }
    this.finish('completed', null);
  }

  private onExit(exit: FfmpegExit, attempt: number): void {
    this.deps.events({ type: 'task.exit', taskId: this.id, attempt, code: exit.code, signal: exit.signal, stopped: exit.stopped, log: exit.log.slice(-5) });
  }

  private finish(status: 'completed', error: string | null): void {
    // A task that failed stays failed (and says why) when its time is over.
    if (this.status !== 'failed') this.transition(status, error);
    this.deps.clock.clearTimeout(this.timer);
    this.deps.clock.clearTimeout(this.nextRun);
    this.deps.ended(this.id);
  }

  /** `ahead` is 1 when the attempt the status is about has not been counted yet (it is starting). */
  private transition(next: TaskStatus, error: string | null, ahead = 0): void {
    const previous = this.status;
    if (next === previous && error === this.error) return;
    if (next !== previous && !ALLOWED[previous].includes(next)) {
      this.deps.logger.error({ from: previous, to: next }, 'task transition not allowed; ignored');
      return;
    }
    this.status = next;
    this.error = error;
    if (next === 'failed') this.deps.slotFreed();
    this.deps.logger.info({ status: next, previous, error }, 'task status');
    this.deps.events({ type: 'task.status', taskId: this.id, status: next, previous, error, attempt: (this.supervisor?.report().attempts ?? 0) + ahead });
  }
}
