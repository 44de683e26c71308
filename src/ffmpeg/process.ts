import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { Clock } from '../lib/clock.js';
import { secretRedactor } from './args.js';
import { LineTail } from './line-tail.js';
import { ProgressParser, type FfmpegProgress } from './progress.js';

/** How long ffmpeg gets after SIGINT to finish its output cleanly before SIGKILL. */
export const DEFAULT_STOP_GRACE_MS = 3000;

export interface FfmpegRunOptions {
  /** The ffmpeg binary (ffmpeg.path). */
  path: string;
  /** Arguments after the binary, without -progress (added here). Never a shell string. */
  args: readonly string[];
  /** Read the output from stdout (pull inputs: FLV on pipe:1). */
  stdout?: (chunk: Buffer) => void;
  progress?: (progress: FfmpegProgress) => void;
  /** The process ended: exit code or signal, and its last stderr lines. */
  exit(result: FfmpegExit): void;
  clock: Clock;
  stopGraceMs?: number;
  /** URLs whose keys, tokens and credentials are hidden in the kept stderr lines. */
  secrets?: readonly string[];
}

export interface FfmpegExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** We asked it to stop (SIGINT, then SIGKILL if needed). */
  stopped: boolean;
  /** Its last stderr lines. */
  log: string[];
  /** A failure to start (binary not found), when there was one. */
  spawnError: Error | undefined;
}

/** Why a run ended, for status and logs: its own last words first. */
export function describeExit(exit: FfmpegExit, reason: Error | undefined): string {
  if (reason) return reason.message;
  if (exit.spawnError) return `cannot start ffmpeg: ${exit.spawnError.message} (ffmpeg.path)`;
  const how = exit.signal ? `killed by ${exit.signal}` : `exited with code ${exit.code}`;
  const said = exit.log.at(-1);
  return said ? `ffmpeg ${how}: ${said}` : `ffmpeg ${how}`;
}

/**
 * Whether util-linux's setpriv can set a parent-death signal here. Through it, ffmpeg
 * gets SIGKILL the moment the daemon dies, however it dies (kill -9 included), so no
 * ffmpeg outlives its daemon. Checked once per process.
 */
let pdeathsig: boolean | undefined;
function canUsePdeathsig(): boolean {
  if (process.platform !== 'linux') return false;
  pdeathsig ??= spawnSync('setpriv', ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore' }).status === 0;
  return pdeathsig;
}

/**
 * One ffmpeg run: spawned with an argument array (no shell) in a process group of its
 * own (so a stop reaches everything it started), progress read from fd 3, the last
 * stderr lines kept. Stopping sends SIGINT (ffmpeg finishes its output: an FLV trailer,
 * an RTMP unpublish) and SIGKILL after a grace period.
 */
export class FfmpegProcess {
  private child: ChildProcess | undefined;
  private readonly tail: LineTail;
  private readonly parser = new ProgressParser();
  private stopping = false;
  private exited = false;
  private killTimer: unknown;
  private spawnError: Error | undefined;
  /** The latest progress report. */
  last: FfmpegProgress | undefined;

  constructor(private readonly options: FfmpegRunOptions) {
    this.tail = new LineTail(20, 500, secretRedactor(options.secrets ?? []));
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    const { path, args, stdout } = this.options;
    const full = ['-hide_banner', '-nostdin', '-nostats', '-progress', 'pipe:3', '-stats_period', '1', ...args];
    const [command, argv] = canUsePdeathsig() ? ['setpriv', ['--pdeathsig', 'KILL', '--', path, ...full]] : [path, full];
    const child = spawn(command, argv, { stdio: ['ignore', stdout ? 'pipe' : 'ignore', 'pipe', 'pipe'], detached: true });
    this.child = child;
    child.on('error', (err) => {
      this.spawnError = err;
      // A process that never started emits no 'close' on every Node version.
      if (child.pid === undefined) setImmediate(() => this.onExit(null, null));
    });
    if (stdout) child.stdout?.on('data', stdout);
    child.stderr?.setEncoding('utf8').on('data', (s: string) => this.tail.push(s));
    const progress = child.stdio[3] as Readable | null;
    progress?.setEncoding('utf8').on('data', (s: string) => {
      for (const report of this.parser.push(s)) {
        this.last = report;
        this.options.progress?.(report);
      }
    });
    // Errors on the pipes (EPIPE after the child died) are not the daemon's to throw.
    for (const stream of [child.stdout, child.stderr, progress]) stream?.on('error', () => undefined);
    child.once('close', (code, signal) => this.onExit(code, signal));
  }

  /** SIGINT now, SIGKILL after the grace period; `exit` reports when it is gone. Idempotent. */
  stop(): void {
    if (this.stopping || this.exited) return;
    this.stopping = true;
    this.signal('SIGINT');
    this.killTimer = this.options.clock.setTimeout(() => this.signal('SIGKILL'), this.options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS);
  }

  /** SIGKILL at once (a stalled process that would not honour SIGINT). */
  kill(): void {
    if (this.exited) return;
    this.stopping = true;
    this.signal('SIGKILL');
  }

  log(): string[] {
    return this.tail.get();
  }

  private signal(signal: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (pid === undefined || this.exited) return;
    try {
      // The negative pid is the process group: ffmpeg and anything it started.
      process.kill(-pid, signal);
    } catch {
      // Already gone.
    }
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.exited) return;
    this.exited = true;
    this.options.clock.clearTimeout(this.killTimer);
    this.options.exit({ code, signal, stopped: this.stopping, log: this.tail.get(), spawnError: this.spawnError });
  }
}
