import { spawnSync } from 'node:child_process';

/** Blocking runs of ffmpeg/ffprobe, for unit tests that make or check a small file. */
export interface ToolResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runTool(cmd: string, args: string[]): ToolResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** ffmpeg, quiet, overwriting its output; throws with its stderr when it fails. */
export function ffmpegSync(args: string[]): void {
  const r = runTool('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', ...args]);
  if (r.status !== 0) throw new Error(`ffmpeg failed: ${r.stderr}`);
}

/** Decodes a whole file; a clean one gives exit 0 and not one line on stderr. */
export function decodeSync(file: string): { status: number | null; stderr: string } {
  const r = runTool('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'error', '-i', file, '-f', 'null', '-']);
  return { status: r.status, stderr: r.stderr };
}

/**
 * The muxer tests' source: 4 s of H.264 (with B-frames, a keyframe a second) and AAC
 * 44.1 kHz, 320x240, as ffmpeg's own FLV muxer writes it.
 */
export function makeTestFlv(file: string): void {
  ffmpegSync([
    '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-t', '4', '-c:v', 'libx264', '-g', '25', '-bf', '2', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '64k', '-f', 'flv', file,
  ]);
}
