/**
 * ffmpeg's `-progress` output: blocks of `key=value` lines, each block ending with
 * `progress=continue` (or `progress=end` for the last). Pure and incremental: feed it
 * whatever the pipe delivers, get one report per completed block.
 */
export interface FfmpegProgress {
  /** Video frames written so far (0 for audio-only). */
  frame: number;
  fps: number;
  /** Output bitrate in bits per second, when ffmpeg knows it. */
  bitrateBps: number | undefined;
  /** Bytes written so far. */
  totalSize: number;
  /** Media time written so far, in milliseconds. */
  outTimeMs: number;
  /** Processing speed relative to real time (1 = real time), when known. */
  speed: number | undefined;
  /** True for the last block of a run. */
  end: boolean;
}

/** A block longer than this is not ffmpeg's progress output; the parser starts over. */
const MAX_PENDING_CHARS = 64 * 1024;

function number(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number.parseFloat(value);
  return Number.isFinite(n) ? n : undefined;
}

/** "1234.5kbits/s" -> 1234500; "N/A" -> undefined. */
function bitrate(value: string | undefined): number | undefined {
  const m = value === undefined ? null : /^\s*([\d.]+)\s*kbits\/s/.exec(value);
  return m ? Math.round(Number(m[1]) * 1000) : undefined;
}

export class ProgressParser {
  private pending = '';
  private fields = new Map<string, string>();
  /** Characters of the current block's complete lines, so a block of many short lines is capped too. */
  private blockChars = 0;

  /** Returns the reports of the blocks this chunk completed, oldest first. */
  push(chunk: string): FfmpegProgress[] {
    this.pending += chunk;
    const reports: FfmpegProgress[] = [];
    let newline: number;
    while ((newline = this.pending.indexOf('\n')) >= 0) {
      const line = this.pending.slice(0, newline).trim();
      this.pending = this.pending.slice(newline + 1);
      this.blockChars += newline + 1;
      const eq = line.indexOf('=');
      if (eq <= 0) continue;
      const key = line.slice(0, eq);
      const value = line.slice(eq + 1);
      if (key !== 'progress') {
        this.fields.set(key, value);
        continue;
      }
      reports.push(this.report(value === 'end'));
      this.fields = new Map();
      this.blockChars = 0;
    }
    // Checked once complete blocks are out: only a block that is itself too long is dropped.
    if (this.pending.length + this.blockChars > MAX_PENDING_CHARS) {
      this.pending = '';
      this.fields.clear();
      this.blockChars = 0;
    }
    return reports;
  }

  private report(end: boolean): FfmpegProgress {
    const f = this.fields;
    // out_time_us is the precise one; out_time_ms is, despite its name, microseconds too in ffmpeg 4-6.
    const outTimeUs = number(f.get('out_time_us')) ?? number(f.get('out_time_ms')) ?? 0;
    const speed = f.get('speed');
    return {
      frame: number(f.get('frame')) ?? 0,
      fps: number(f.get('fps')) ?? 0,
      bitrateBps: bitrate(f.get('bitrate')),
      totalSize: number(f.get('total_size')) ?? 0,
      outTimeMs: Math.max(0, Math.round(outTimeUs / 1000)),
      speed: speed === undefined || speed.startsWith('N/A') ? undefined : number(speed),
      end,
    };
  }
}
