import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Replaces `path` with `text` so that a crash leaves either the old file or the new one,
 * never half of either: write a temp file next to it, fsync, rename over, fsync the
 * directory. `mode` is set explicitly (open's mode is masked by the umask).
 * `stillCurrent`, asked last before the rename, may call the write off (returning false,
 * nothing written): the config file edited by hand since the caller read it.
 */
export async function writeFileAtomic(path: string, text: string, mode: number, stillCurrent?: () => Promise<boolean>): Promise<boolean> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.chmod(mode);
    await fh.writeFile(text, 'utf8');
    // fsync before rename, or a crash can leave the new name pointing at empty data.
    await fh.sync();
    await fh.close();
    if (stillCurrent && !(await stillCurrent())) {
      await unlink(tmp);
      return false;
    }
    await rename(tmp, path);
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await syncDir(dir);
  return true;
}

/** Makes the rename itself durable; some file systems refuse to fsync a directory, which is fine. */
async function syncDir(dir: string): Promise<void> {
  try {
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    // Best effort only: the file content is already safe.
  }
}
