import { mkdir, open, rm, stat, statfs, truncate, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

/** An open recording file: appends in order, and one in-place patch for finalisation. */
export interface RecordingFile {
  /** Appends the buffers, in order, as one write where the platform allows. */
  append(buffers: readonly Buffer[]): Promise<void>;
  /** Overwrites bytes already written (fMP4's duration when a file is closed cleanly). */
  patch(offset: number, bytes: Buffer): Promise<void>;
  /** Flushes to stable storage and closes. */
  close(): Promise<void>;
  /**
   * Why the open file is no longer the one at its path (deleted, moved or replaced, its
   * disk unmounted), or undefined while it is: writes to such a file succeed and are lost.
   */
  gone?(): Promise<string | undefined>;
}

/**
 * What recording needs from the file system, injected so tests can make a disk fill up
 * or a write fail without root or a loop mount.
 */
export interface RecordingFileSystem {
  /** Creates the file (and its directory); fails if it exists. */
  create(path: string): Promise<RecordingFile>;
  remove(path: string): Promise<void>;
  /** Size in bytes, or undefined when the file is gone. */
  size(path: string): Promise<number | undefined>;
  /** Bytes an unprivileged writer may still use on the file system holding `dir`. */
  freeBytes(dir: string): Promise<number>;
  /** Up to `length` bytes at `offset` (fewer at the end of the file). */
  read(path: string, offset: number, length: number): Promise<Buffer>;
  /** Cuts a file back to `length` bytes (repairing a torn end). */
  truncate(path: string, length: number): Promise<void>;
}

class NodeRecordingFile implements RecordingFile {
  constructor(
    private readonly handle: FileHandle,
    private readonly path: string,
  ) {}

  async gone(): Promise<string | undefined> {
    const open = await this.handle.stat();
    if (open.nlink === 0) return 'the file was deleted while it was being written';
    const atPath = await stat(this.path).catch(() => undefined);
    if (!atPath || atPath.ino !== open.ino || atPath.dev !== open.dev) return 'the file was moved or replaced, or its disk unmounted, while it was being written';
    return undefined;
  }

  async append(buffers: readonly Buffer[]): Promise<void> {
    // writev may write less than asked (a full disk, a signal); finish or fail, never skip bytes.
    let pending = buffers.filter((b) => b.length > 0);
    while (pending.length > 0) {
      const { bytesWritten } = await this.handle.writev(pending);
      pending = dropWritten(pending, bytesWritten);
    }
  }

  async patch(offset: number, bytes: Buffer): Promise<void> {
    await this.handle.write(bytes, 0, bytes.length, offset);
  }

  async close(): Promise<void> {
    try {
      await this.handle.sync();
    } finally {
      await this.handle.close();
    }
  }
}

/** The buffers still to write after `written` bytes of them went out. */
function dropWritten(buffers: Buffer[], written: number): Buffer[] {
  if (written <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
  let i = 0;
  let left = written;
  while (i < buffers.length && left >= (buffers[i] as Buffer).length) left -= (buffers[i++] as Buffer).length;
  const rest = buffers.slice(i);
  if (left > 0 && rest.length > 0) rest[0] = (rest[0] as Buffer).subarray(left);
  return rest;
}

/**
 * mkdir -p that reports why it failed: Node's recursive mkdir says ENOENT when the file
 * system refuses (read-only, no permission), which sends the operator looking for a
 * missing directory. Made again one level at a time, the refusal gives the real reason.
 */
async function makeDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const missing: string[] = [];
    for (let d = dir; ; d = dirname(d)) {
      if ((await stat(d).catch(() => undefined)) !== undefined || dirname(d) === d) break;
      missing.unshift(d);
    }
    for (const d of missing) await mkdir(d);
    throw err;
  }
}

export const nodeRecordingFs: RecordingFileSystem = {
  async create(path) {
    await makeDirectory(dirname(path));
    return new NodeRecordingFile(await open(path, 'wx', 0o644), path);
  },
  async remove(path) {
    await rm(path, { force: true });
  },
  async size(path) {
    try {
      return (await stat(path)).size;
    } catch {
      return undefined;
    }
  },
  async read(path, offset, length) {
    const handle = await open(path, 'r');
    try {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, offset);
      return buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  },
  async truncate(path, length) {
    await truncate(path, length);
  },
  async freeBytes(dir) {
    await mkdir(dir, { recursive: true });
    const s = await statfs(dir);
    return s.bavail * s.bsize;
  },
};
