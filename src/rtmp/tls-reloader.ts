import { createHash } from 'node:crypto';
import { watch as fsWatch } from 'node:fs';
import { readFile as fsReadFile, stat as fsStat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../lib/clock.js';
import { validateTlsPair, type LoadedTlsPair, type TlsFiles, type TlsPair } from './tls-pair.js';

/** What gets the new context: a tls.Server. New handshakes use it; live connections keep theirs. */
export interface SecureContextTarget {
  setSecureContext(options: SecureContextOptions): void;
}

export interface DirWatcher {
  close(): void;
}

/** Watches one directory (not recursive); `filename` is null when the platform does not say. */
export type WatchDir = (dir: string, onChange: (filename: string | null) => void, onError: (err: Error) => void) => DirWatcher;

export interface FileSignature {
  mtimeMs: number;
  size: number;
  ino: number;
}

export interface TlsReloaderDeps {
  logger: Logger;
  clock?: Clock;
  watchDir?: WatchDir;
  readFile?: (path: string) => Promise<Buffer>;
  /** Follows symlinks, like fs.stat. */
  stat?: (path: string) => Promise<FileSignature>;
}

export interface TlsReloaderOptions {
  /** Quiet time after the last change before the files are read (they are often written in two steps). */
  debounceMs?: number;
  /** Upper bound on the debounce when changes keep coming. */
  maxWaitMs?: number;
  /** mtime/size poll, for filesystems where fs.watch stays silent (NFS, some container mounts). */
  pollIntervalMs?: number;
}

export type ReloadOutcome = 'reloaded' | 'unchanged' | 'rejected' | 'closed';

type State = 'new' | 'started' | 'closed';

const DEFAULTS = { debounceMs: 500, maxWaitMs: 5_000, pollIntervalMs: 30_000 } as const;

const watchDirectory: WatchDir = (dir, onChange, onError) => {
  // Not persistent: a watcher must never keep the daemon alive on its own.
  const watcher = fsWatch(dir, { persistent: false }, (_event, filename) => onChange(filename === null ? null : String(filename)));
  watcher.on('error', onError);
  return watcher;
};

const statSignature = async (path: string): Promise<FileSignature> => {
  const s = await fsStat(path);
  return { mtimeMs: s.mtimeMs, size: s.size, ino: s.ino };
};

function errorFields(err: unknown): { err: string; reason?: string; code?: string } {
  const e = err as { message?: string; reason?: unknown; code?: unknown };
  return {
    err: e.message ?? String(err),
    ...(typeof e.reason === 'string' ? { reason: e.reason } : {}),
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
  };
}

/**
 * Reloads the RTMPS certificate and key when their files change. Renewal tools replace
 * the files (certbot swaps symlinks, Kubernetes renames a `..data` link, editors write a
 * temp file and rename it), so the containing directories are watched, not the inodes.
 * A pair that does not load (mismatched, half-written, unreadable) is reported once and
 * the running certificate stays; the next change is tried again.
 */
export class TlsReloader {
  private readonly clock: Clock;
  private readonly watchDir: WatchDir;
  private readonly readFile: (path: string) => Promise<Buffer>;
  private readonly stat: (path: string) => Promise<FileSignature>;
  private readonly opts: Required<TlsReloaderOptions>;
  private readonly logger: Logger;

  private state: State = 'new';
  private current: TlsPair;
  /** The last pair (or read error) reported as bad, so unrelated events do not repeat the error. */
  private rejected: string | undefined;
  private watchers: DirWatcher[] = [];
  private debounceTimer: unknown;
  private firstEventAt: number | undefined;
  private pollTimer: unknown;
  private signature: string | undefined;
  /** Checks run one at a time, so an older read can never be applied after a newer one. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly files: TlsFiles,
    initial: TlsPair,
    private readonly target: SecureContextTarget,
    deps: TlsReloaderDeps,
    options: TlsReloaderOptions = {},
  ) {
    this.current = initial;
    this.logger = deps.logger;
    this.clock = deps.clock ?? systemClock;
    this.watchDir = deps.watchDir ?? watchDirectory;
    this.readFile = deps.readFile ?? ((path) => fsReadFile(path));
    this.stat = deps.stat ?? statSignature;
    this.opts = { ...DEFAULTS, ...options };
  }

  start(): void {
    if (this.state !== 'new') return;
    this.state = 'started';
    const { certPath, keyPath } = this.files;
    const names = new Set([basename(certPath), basename(keyPath)]);
    for (const dir of new Set([dirname(resolve(certPath)), dirname(resolve(keyPath))])) {
      try {
        const watcher = this.watchDir(
          dir,
          (filename) => {
            // `..data` and friends: the Kubernetes secret-volume swap renames only that link.
            if (filename === null || names.has(filename) || filename.startsWith('..')) this.schedule();
          },
          (err) => {
            this.logger.warn({ dir, ...errorFields(err) }, 'tls directory watch failed; polling only');
            watcher.close();
            this.watchers = this.watchers.filter((w) => w !== watcher);
          },
        );
        this.watchers.push(watcher);
      } catch (err) {
        this.logger.warn({ dir, ...errorFields(err) }, 'cannot watch tls directory; polling only');
      }
    }
    void this.poll(true);
  }

  /** Stops watching and polling; a check already reading the files applies nothing. Idempotent. */
  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const watcher of this.watchers) watcher.close();
    this.watchers = [];
    if (this.debounceTimer !== undefined) this.clock.clearTimeout(this.debounceTimer);
    if (this.pollTimer !== undefined) this.clock.clearTimeout(this.pollTimer);
    this.debounceTimer = undefined;
    this.pollTimer = undefined;
  }

  /** Reads both files now and applies them if they changed and load. */
  check(): Promise<ReloadOutcome> {
    const next = this.chain.then(() => this.checkNow());
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Resolves when no check is running or queued (for tests and orderly shutdown). */
  async idle(): Promise<void> {
    await this.chain;
  }

  /** A method, not a property test: TypeScript would keep a narrowed `state` across awaits. */
  private isClosed(): boolean {
    return this.state === 'closed';
  }

  private schedule(): void {
    if (this.state !== 'started') return;
    const now = this.clock.now();
    this.firstEventAt ??= now;
    if (this.debounceTimer !== undefined) this.clock.clearTimeout(this.debounceTimer);
    const wait = Math.max(0, Math.min(this.opts.debounceMs, this.firstEventAt + this.opts.maxWaitMs - now));
    this.debounceTimer = this.clock.setTimeout(() => {
      this.debounceTimer = undefined;
      this.firstEventAt = undefined;
      void this.check();
    }, wait);
  }

  private async poll(baseline = false): Promise<void> {
    const signature = await this.signatures();
    if (this.state !== 'started') return;
    if (!baseline && signature !== this.signature) this.schedule();
    this.signature = signature;
    this.pollTimer = this.clock.setTimeout(() => void this.poll(), this.opts.pollIntervalMs);
  }

  private async signatures(): Promise<string> {
    const one = (path: string) =>
      this.stat(path).then(
        (s) => `${s.ino}:${s.size}:${s.mtimeMs}`,
        (err: NodeJS.ErrnoException) => `error:${err.code ?? err.message}`,
      );
    return (await Promise.all([one(this.files.certPath), one(this.files.keyPath)])).join('|');
  }

  private async checkNow(): Promise<ReloadOutcome> {
    if (this.isClosed()) return 'closed';
    const { certPath, keyPath } = this.files;
    let pair: TlsPair;
    try {
      const [cert, key] = await Promise.all([this.readFile(certPath), this.readFile(keyPath)]);
      pair = { cert, key };
    } catch (err) {
      if (this.isClosed()) return 'closed';
      return this.reject(`read:${errorFields(err).err}`, err);
    }
    if (this.isClosed()) return 'closed';
    if (pair.cert.equals(this.current.cert) && pair.key.equals(this.current.key)) {
      this.rejected = undefined;
      return 'unchanged';
    }
    const fingerprint = createHash('sha256').update(pair.cert).update('\0').update(pair.key).digest('hex');
    if (fingerprint === this.rejected) return 'rejected';
    let loaded: LoadedTlsPair;
    try {
      // A mismatched or truncated pair throws here, before the listener is touched.
      loaded = validateTlsPair(pair, this.files, this.clock.now());
      this.target.setSecureContext({ cert: pair.cert, key: pair.key });
    } catch (err) {
      return this.reject(fingerprint, err);
    }
    this.current = pair;
    this.rejected = undefined;
    this.logger.info({ certPath, keyPath, subject: loaded.subject, validTo: loaded.validTo, fingerprint256: loaded.fingerprint256 }, 'rtmps certificate reloaded');
    if (loaded.expired) this.logger.warn({ certPath, subject: loaded.subject, validTo: loaded.validTo }, 'rtmps certificate has expired');
    return 'reloaded';
  }

  private reject(key: string, err: unknown): ReloadOutcome {
    if (key !== this.rejected) {
      this.rejected = key;
      this.logger.error({ certPath: this.files.certPath, keyPath: this.files.keyPath, ...errorFields(err) }, 'rtmps certificate reload failed; keeping the current certificate');
    }
    return 'rejected';
  }
}
