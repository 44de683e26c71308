import { writeFileAtomic } from './atomic-write.js';

/**
 * Keeps a state file in step with memory: writes are atomic and one at a time, and a
 * write asked for while one runs is made once, after it, rendering the state of that
 * moment, so the file always ends with the latest state and never falls behind by more
 * than one write, however often it is asked for.
 */
export class LatestFileWriter {
  private writing: Promise<void> = Promise.resolve();
  private queued: Promise<void> | undefined;

  constructor(
    readonly path: string,
    private readonly mode: number,
    private readonly render: () => string,
    private readonly onError: (err: Error) => void,
  ) {}

  /** Resolves when the state as it is now (or later) is on disk; never rejects. */
  write(): Promise<void> {
    if (this.queued) return this.queued;
    this.queued = this.writing.then(async () => {
      this.queued = undefined;
      try {
        await writeFileAtomic(this.path, this.render(), this.mode);
      } catch (err) {
        this.onError(err as Error);
      }
    });
    this.writing = this.queued;
    return this.writing;
  }

  /** Resolves when the writes asked for so far are done. */
  settled(): Promise<void> {
    return this.writing;
  }
}
