import { execFileSync } from 'node:child_process';
import { waitFor } from './ffmpeg.js';
import type { SpawnedDaemon } from './daemon.js';

/** Pids of processes whose command line contains `marker` (pgrep -f), this process left out. */
export function pidsMatching(marker: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .filter((pid) => pid !== process.pid);
  } catch {
    return [];
  }
}

/**
 * Waits for the daemon's one ffmpeg (found by `marker`, something only its command line
 * holds), kills the daemon with SIGKILL and waits for that ffmpeg to die with it. Whatever
 * is left is killed, so a failure does not leave processes behind.
 */
export async function killDaemonAndAwaitItsFfmpeg(daemon: SpawnedDaemon, marker: string, what: string): Promise<void> {
  try {
    await waitFor(() => pidsMatching(marker).length === 1, `the ${what} to run`, 15_000);
    daemon.proc.kill('SIGKILL');
    await daemon.exited;
    await waitFor(() => pidsMatching(marker).length === 0, `the ${what} to die with its daemon`, 10_000);
  } finally {
    daemon.proc.kill('SIGKILL');
    for (const pid of pidsMatching(marker)) process.kill(pid, 'SIGKILL');
  }
}
