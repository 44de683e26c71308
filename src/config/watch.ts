import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Quiet time after the last change event before the file is read: editors write in steps. */
const SETTLE_MS = 250;

/**
 * Calls `onChange` when the config file's content changes. Watches the directory, not
 * the file: editors and `mv` replace the file, which a file watch would lose. Any event
 * in the directory leads to a look at the content, not only events naming the file:
 * Kubernetes updates a mounted ConfigMap by swapping a `..data` symlink, and the file's
 * own name never appears in an event. Events are debounced, and a change is reported
 * only when the content differs from the last one seen (touching the file, other files
 * changing, or our own write-back trigger nothing).
 */
export class ConfigWatcher {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastDigest: string | undefined;

  constructor(
    private readonly file: string,
    private readonly onChange: () => void,
    private readonly onError: (err: Error) => void,
  ) {}

  async start(): Promise<void> {
    this.lastDigest = await this.digest();
    this.watcher = watch(dirname(this.file), { persistent: false }, () => this.schedule());
    this.watcher.on('error', (err) => this.onError(err));
  }

  /** Records content the daemon itself wrote, so it is not taken for an edit. */
  async noteCurrentContent(): Promise<void> {
    this.lastDigest = await this.digest();
  }

  close(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
    this.watcher = undefined;
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.check(), SETTLE_MS);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    const digest = await this.digest();
    // A missing file (mid-replace) is not a change: the rename that follows is.
    if (digest === undefined || digest === this.lastDigest) return;
    this.lastDigest = digest;
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
