import type { RecordingFile, RecordingFileSystem } from './recording-fs.js';

/**
 * Appends to one recording file without ever making the caller wait: buffers are queued
 * and written in order, everything queued so far in one write, as soon as the previous
 * write returned. Writing at once (rather than on a timer) is what makes a recording
 * crash-safe: a killed process loses only what the kernel had not been handed yet.
 *
 * The queue is bounded by the caller through `backlog()` (the hub reader skips to the
 * next keyframe when the disk falls behind). The first failure (ENOSPC, EIO) stops the
 * writer: later buffers are discarded and `failed` tells why.
 */
export class RecordingFileWriter {
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private inFlightBytes = 0;
  private file: RecordingFile | undefined;
  private pumping: Promise<void> | undefined;
  private error: Error | undefined;
  private finished = false;
  private verifying: Promise<void> | undefined;
  /** Bytes the file system accepted. */
  bytesWritten = 0;

  constructor(
    private readonly fs: RecordingFileSystem,
    readonly path: string,
    private readonly onError: (err: Error) => void,
  ) {}

  get failed(): Error | undefined {
    return this.error;
  }

  /** Bytes handed to the writer and not written yet. */
  backlog(): number {
    return this.queuedBytes + this.inFlightBytes;
  }

  write(buffers: readonly Buffer[]): void {
    if (this.error || this.finished) return;
    for (const b of buffers) {
      if (b.length === 0) continue;
      this.queue.push(b);
      this.queuedBytes += b.length;
    }
    if (this.queue.length > 0) this.pumping ??= this.pump();
  }

  /**
   * Writes what is queued, applies `patch` (if the file is healthy), then syncs and closes.
   * Resolves either way; `failed` says whether the file is whole.
   */
  async finish(patch?: { offset: number; bytes: Buffer }): Promise<void> {
    this.finished = true;
    await this.pumping;
    // Nothing was ever written: no file was made, and none is left behind.
    if (!this.file) return;
    await this.verify();
    try {
      if (patch && !this.error) await this.file.patch(patch.offset, patch.bytes);
    } catch (err) {
      this.fail(err as Error);
    }
    try {
      await this.file.close();
    } catch (err) {
      this.fail(err as Error);
    }
    this.file = undefined;
  }

  /**
   * Fails the writer when its file is no longer at its path (see RecordingFile.gone):
   * otherwise the recording would go on into a file nobody can reach, and be reported ready.
   */
  verify(): Promise<void> {
    const file = this.file;
    if (!file?.gone || this.error) return Promise.resolve();
    // One check at a time: on a hung disk they would pile up on libuv's few threads.
    this.verifying ??= (async () => {
      try {
        const reason = await file.gone!();
        if (reason) this.fail(Object.assign(new Error(reason), { code: 'EGONE' }));
      } catch (err) {
        this.fail(err as Error);
      } finally {
        this.verifying = undefined;
      }
    })();
    return this.verifying;
  }

  private async open(): Promise<RecordingFile> {
    this.file ??= await this.fs.create(this.path);
    return this.file;
  }

  private async pump(): Promise<void> {
    try {
      const file = await this.open();
      while (this.queue.length > 0 && !this.error) {
        const batch = this.queue;
        this.queue = [];
        this.inFlightBytes = this.queuedBytes;
        this.queuedBytes = 0;
        await file.append(batch);
        this.bytesWritten += this.inFlightBytes;
        this.inFlightBytes = 0;
      }
    } catch (err) {
      this.fail(err as Error);
    } finally {
      this.pumping = undefined;
    }
  }

  private fail(err: Error): void {
    if (this.error) return;
    this.error = err;
    this.queue = [];
    this.queuedBytes = 0;
    this.inFlightBytes = 0;
    this.onError(err);
  }
}
