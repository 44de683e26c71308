import { execFile } from 'node:child_process';

/** How long one ffprobe may take (a remote file on a slow server). */
const PROBE_TIMEOUT_MS = 15_000;

/** A media file's duration in seconds, or undefined when ffprobe cannot tell. */
export function probeDurationSeconds(ffprobePath: string, url: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    execFile(
      ffprobePath,
      ['-v', 'error', '-show_entries', 'format=duration', '-of', 'default=noprint_wrappers=1:nokey=1', '--', url],
      { timeout: PROBE_TIMEOUT_MS, maxBuffer: 64 * 1024 },
      (err, stdout) => {
        const seconds = Number.parseFloat(String(stdout).trim());
        resolve(!err && Number.isFinite(seconds) && seconds > 0 ? seconds : undefined);
      },
    );
  });
}
