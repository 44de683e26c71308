import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile, realpath } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Quiet time after the last change event before the file is read: editors write in steps. */
const SETTLE_MS = 250;
/**
 * Longest a change waits for quiet. Without it, a directory that is never quiet (a log
 * file written next to the config) would postpone every reload indefinitely.
 */
const MAX_SETTLE_MS = 2_000;
/** A file still missing this long after it went away is reported: it was deleted, not replaced. */
const MISSING_MS = 1_000;
/** The digest standing for "no file", so that its return is a change like any other. */
const MISSING = 'missing';

/**
 * Calls `onChange` when the config file's content changes. Watches the directory, not
 * the file: editors and `mv` replace the file, which a file watch would lose. Any event
 * in the directory leads to a look at the content, not only events naming the file:
 * Kubernetes updates a mounted ConfigMap by swapping a `..data` symlink, and the file's
 * own name never appears in an event. A config file that is a symlink to another
 * directory has that directory watched too (it is where edits happen). Events are
 * debounced, and a change is reported only when the content differs from the last one
 * seen (touching the file, other files changing, or our own write-back trigger nothing).
 */
export class ConfigWatcher {
  /** Watched directories: the file's own, and its real path's when that is elsewhere. */
  private readonly watchers = new Map<string, FSWatcher>();
  private timer: NodeJS.Timeout | undefined;
  private pendingSince: number | undefined;
  private lastDigest: string | undefined;
  private closed = false;

  constructor(
    private readonly file: string,
    private readonly onChange: () => void,
    private readonly onError: (err: Error) => void,
  ) {}

  async start(): Promise<void> {
    this.lastDigest = await this.digest();
    await this.watchDirectories();
  }

  /** Records content the daemon itself wrote, so it is not taken for an edit. */
  async noteCurrentContent(): Promise<void> {
    this.lastDigest = (await this.digest()) ?? MISSING;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
  }

  /** The link's directory always; the target's as well, re-resolved as links change. */
  private async watchDirectories(): Promise<void> {
    const wanted = new Set([dirname(this.file)]);
    const real = await realpath(this.file).catch(() => undefined);
    if (real !== undefined) wanted.add(dirname(real));
    if (this.closed) return;
    for (const [dir, watcher] of this.watchers) {
      if (wanted.has(dir)) continue;
      watcher.close();
      this.watchers.delete(dir);
    }
    for (const dir of wanted) {
      if (this.watchers.has(dir)) continue;
      try {
        const watcher = watch(dir, { persistent: false }, () => this.schedule());
        watcher.on('error', (err) => this.onError(err));
        this.watchers.set(dir, watcher);
      } catch (err) {
        this.onError(err as Error);
      }
    }
  }

  private schedule(): void {
    if (this.closed) return;
    const now = Date.now();
    this.pendingSince ??= now;
    clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(SETTLE_MS, this.pendingSince + MAX_SETTLE_MS - now));
    this.timer = setTimeout(() => {
      this.pendingSince = undefined;
      void this.check();
    }, wait);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    await this.watchDirectories();
    const digest = await this.digest();
    if (digest === undefined) {
      // Missing mid-replace is not a change (the rename that follows is); still missing
      // a second later, it was deleted, which the reload then reports.
      if (this.lastDigest !== MISSING) setTimeout(() => void this.checkStillMissing(), MISSING_MS).unref();
      return;
    }
    if (digest === this.lastDigest) return;
    this.lastDigest = digest;
    this.onChange();
  }

  private async checkStillMissing(): Promise<void> {
    if (this.closed || this.lastDigest === MISSING || (await this.digest()) !== undefined) return;
    this.lastDigest = MISSING;
    this.onChange();
  }

  private async digest(): Promise<string | undefined> {
    try {
      return createHash('sha256').update(await readFile(this.file)).digest('hex');
    } catch {
      return undefined;
    }
  }
}
