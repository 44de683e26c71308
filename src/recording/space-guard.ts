import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import type { SpaceGuard } from './recorder.js';
import type { RecordingFileSystem } from './recording-fs.js';

/** How often free space is looked at while the daemon runs. */
export const SPACE_CHECK_INTERVAL_MS = 10_000;

function mib(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : `${Math.floor(bytes / 1024 ** 2)} MiB`;
}

/**
 * Watches the free space of the recordings' file system against storage.minFreeSpace,
 * so recordings stop cleanly (and say why) before the disk is full, instead of failing
 * mid-write when it is.
 */
export class FreeSpaceGuard implements SpaceGuard {
  private isOk = true;
  private free: number | undefined;
  private readonly listeners = new Set<(ok: boolean) => void>();
  private timer: unknown;
  private closed = false;

  constructor(
    private readonly dir: string,
    private minFreeBytes: number,
    private readonly fs: RecordingFileSystem,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  get ok(): boolean {
    return this.isOk;
  }

  get message(): string {
    return `low_disk_space: ${this.free === undefined ? 'unknown' : mib(this.free)} free in ${this.dir}, storage.minFreeSpace is ${mib(this.minFreeBytes)}; no recording is written until space is freed`;
  }

  get freeBytes(): number | undefined {
    return this.free;
  }

  watch(listener: (ok: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Checks now, then every SPACE_CHECK_INTERVAL_MS until closed. */
  async start(): Promise<void> {
    await this.check();
    this.schedule();
  }

  setMinFreeBytes(bytes: number): void {
    this.minFreeBytes = bytes;
    void this.check();
  }

  close(): void {
    this.closed = true;
    this.clock.clearTimeout(this.timer);
  }

  async check(): Promise<void> {
    try {
      this.free = await this.fs.freeBytes(this.dir);
    } catch (err) {
      // Unknown is not low: a file system that cannot report space should not stop recordings.
      this.logger.warn({ err: (err as Error).message, dir: this.dir }, 'cannot read free space of the recordings directory');
      return;
    }
    const ok = this.free >= this.minFreeBytes;
    if (ok === this.isOk) return;
    this.isOk = ok;
    if (ok) this.logger.info({ dir: this.dir, free: this.free }, 'free space above storage.minFreeSpace again; recordings resume');
    else this.logger.error({ dir: this.dir, free: this.free, minFree: this.minFreeBytes }, 'free space below storage.minFreeSpace; recordings stop');
    for (const listener of [...this.listeners]) listener(ok);
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = this.clock.setTimeout(() => {
      void this.check().finally(() => this.schedule());
    }, SPACE_CHECK_INTERVAL_MS);
  }
}
