/**
 * The last lines of a text stream (ffmpeg's stderr), for status and error messages.
 * Incremental and bounded: a line longer than `maxLineChars` is cut, and only the last
 * `maxLines` are kept.
 */
export class LineTail {
  private readonly lines: string[] = [];
  private partial = '';

  constructor(
    private readonly maxLines = 20,
    private readonly maxLineChars = 500,
    /** Applied to every line before it is kept (hides keys and tokens). */
    private readonly redact: (line: string) => string = (line) => line,
  ) {}

  push(chunk: string): void {
    const parts = (this.partial + chunk).split(/\r?\n|\r/);
    this.partial = (parts.pop() ?? '').trimStart().slice(0, this.maxLineChars);
    for (const line of parts) this.add(line);
  }

  /** The kept lines, the unfinished last one included. */
  get(): string[] {
    return this.partial.trim() === '' ? [...this.lines] : [...this.lines, this.redact(this.partial.trim())];
  }

  /** The last non-empty line, if any. */
  last(): string | undefined {
    return this.get().at(-1);
  }

  private add(line: string): void {
    const trimmed = line.trim();
    if (trimmed === '') return;
    this.lines.push(this.redact(trimmed).slice(0, this.maxLineChars));
    if (this.lines.length > this.maxLines) this.lines.shift();
  }
}
