import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RecordingFileWriter } from '../../src/recording/file-writer.js';
import { nodeRecordingFs, type RecordingFile, type RecordingFileSystem } from '../../src/recording/recording-fs.js';
import { describeWriteError } from '../../src/recording/recording-session.js';

const bytes = (n: number, fill: number): Buffer => Buffer.alloc(n, fill);

const exists = (path: string): Promise<boolean> => stat(path).then(
  () => true,
  () => false,
);

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * The real file system, with each append noted and, when `hold` is set, kept waiting
 * before it reaches the disk: a slow disk, without sleeping.
 */
function watchedFs(): RecordingFileSystem & { creates: string[]; appends: number[][]; hold: Deferred | undefined } {
  const state = {
    ...nodeRecordingFs,
    creates: [] as string[],
    appends: [] as number[][],
    hold: undefined as Deferred | undefined,
    async create(path: string): Promise<RecordingFile> {
      state.creates.push(path);
      const file = await nodeRecordingFs.create(path);
      return {
        async append(buffers) {
          state.appends.push(buffers.map((b) => b.length));
          if (state.hold) await state.hold.promise;
          await file.append(buffers);
        },
        patch: (offset, b) => file.patch(offset, b),
        close: () => file.close(),
      };
    },
  };
  return state;
}

/** The real file system with a disk that is full after `capacity` bytes: it writes what fits, then ENOSPC. */
function fillingFs(capacity: number): RecordingFileSystem & { appendCalls: number } {
  let used = 0;
  const state = {
    ...nodeRecordingFs,
    appendCalls: 0,
    async create(path: string): Promise<RecordingFile> {
      const file = await nodeRecordingFs.create(path);
      return {
        async append(buffers) {
          state.appendCalls++;
          const all = Buffer.concat(buffers);
          const fits = Math.min(all.length, capacity - used);
          if (fits > 0) await file.append([all.subarray(0, fits)]);
          used += fits;
          if (fits < all.length) throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
        },
        patch: (offset, b) => file.patch(offset, b),
        close: () => file.close(),
      };
    },
  };
  return state;
}

describe('RecordingFileWriter', () => {
  let tmp: string;

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'flowrelay-writer-'));
  });

  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('writes buffers in order, batching what queued up while a write was in flight', async () => {
    const fs = watchedFs();
    const path = join(tmp, 'a', 'b', 'out.bin');
    const onError = vi.fn();
    const writer = new RecordingFileWriter(fs, path, onError);

    fs.hold = deferred();
    writer.write([bytes(10, 1)]);
    expect(writer.backlog()).toBe(10);
    await vi.waitFor(() => expect(fs.appends).toHaveLength(1));

    // The first append is held: everything written now waits behind it.
    writer.write([bytes(20, 2), bytes(0, 9)]);
    writer.write([bytes(30, 3)]);
    writer.write([]);
    writer.write([bytes(40, 4), bytes(50, 5)]);
    expect(writer.backlog()).toBe(150);
    expect(writer.bytesWritten).toBe(0);
    const held = fs.hold;
    fs.hold = undefined;
    held.resolve();

    await writer.finish();
    // One write for what was waiting (empty buffers are never handed to the disk).
    expect(fs.appends).toEqual([[10], [20, 30, 40, 50]]);
    expect(writer.backlog()).toBe(0);
    expect(writer.bytesWritten).toBe(150);
    expect(writer.failed).toBeUndefined();
    expect(onError).not.toHaveBeenCalled();
    const expected = Buffer.concat([bytes(10, 1), bytes(20, 2), bytes(30, 3), bytes(40, 4), bytes(50, 5)]);
    expect(await readFile(path)).toEqual(expected);
  });

  it('keeps order across many writes interleaved with real disk writes', async () => {
    const path = join(tmp, 'many.bin');
    const writer = new RecordingFileWriter(nodeRecordingFs, path, () => undefined);
    const chunks: Buffer[] = [];
    for (let i = 0; i < 300; i++) {
      const chunk = Buffer.alloc(1 + (i % 97), i % 256);
      chunks.push(chunk);
      writer.write([chunk]);
      // Let some writes reach the disk between others.
      if (i % 7 === 0) await new Promise((r) => setImmediate(r));
    }
    await writer.finish();
    const total = chunks.reduce((n, c) => n + c.length, 0);
    expect(writer.bytesWritten).toBe(total);
    expect(writer.backlog()).toBe(0);
    expect(await readFile(path)).toEqual(Buffer.concat(chunks));
  });

  it('ignores writes after finish', async () => {
    const path = join(tmp, 'done.bin');
    const writer = new RecordingFileWriter(nodeRecordingFs, path, () => undefined);
    writer.write([bytes(5, 1)]);
    await writer.finish();
    writer.write([bytes(5, 2)]);
    expect(writer.backlog()).toBe(0);
    await writer.finish();
    expect(await readFile(path)).toEqual(bytes(5, 1));
  });

  it('applies the finishing patch in place', async () => {
    const path = join(tmp, 'patched.bin');
    const writer = new RecordingFileWriter(nodeRecordingFs, path, () => undefined);
    writer.write([Buffer.from('hello world')]);
    await writer.finish({ offset: 6, bytes: Buffer.from('WORLD') });
    expect(await readFile(path, 'utf8')).toBe('hello WORLD');
  });

  it('creates no file when nothing was written', async () => {
    const fs = watchedFs();
    const path = join(tmp, 'never', 'made.bin');
    const writer = new RecordingFileWriter(fs, path, () => undefined);
    writer.write([]);
    writer.write([Buffer.alloc(0)]);
    await writer.finish({ offset: 0, bytes: Buffer.from('x') });
    expect(fs.creates).toEqual([]);
    expect(await exists(path)).toBe(false);
    expect(await exists(join(tmp, 'never'))).toBe(false);
    expect(writer.failed).toBeUndefined();
  });

  it('stops at the first ENOSPC: one error, later writes dropped, backlog 0, finish resolves', async () => {
    const fs = fillingFs(25);
    const path = join(tmp, 'full.bin');
    const errors: Error[] = [];
    const writer = new RecordingFileWriter(fs, path, (err) => errors.push(err));

    writer.write([bytes(10, 1)]);
    await vi.waitFor(() => expect(writer.bytesWritten).toBe(10));
    // This batch does not fit: 15 of its 30 bytes reach the disk, then ENOSPC.
    writer.write([bytes(10, 2), bytes(20, 3)]);
    await vi.waitFor(() => expect(writer.failed).toBeDefined());

    expect(errors).toHaveLength(1);
    expect(errors[0]).toBe(writer.failed);
    expect((writer.failed as NodeJS.ErrnoException).code).toBe('ENOSPC');
    expect(writer.backlog()).toBe(0);
    expect(writer.bytesWritten).toBe(10);

    const callsAtFailure = fs.appendCalls;
    writer.write([bytes(100, 4)]);
    expect(writer.backlog()).toBe(0);
    await writer.finish({ offset: 0, bytes: Buffer.from('PATCH') });

    expect(fs.appendCalls).toBe(callsAtFailure);
    expect(errors).toHaveLength(1);
    // No patch on a broken file; what did reach the disk stays.
    expect(await readFile(path)).toEqual(Buffer.concat([bytes(10, 1), bytes(10, 2), bytes(5, 3)]));
  });

  it('reports a file that cannot be created once, and finish still resolves', async () => {
    const fs: RecordingFileSystem = {
      ...nodeRecordingFs,
      create: () => Promise.reject(Object.assign(new Error('permission denied'), { code: 'EACCES' })),
    };
    const errors: Error[] = [];
    const writer = new RecordingFileWriter(fs, join(tmp, 'x.bin'), (err) => errors.push(err));
    writer.write([bytes(10, 1)]);
    writer.write([bytes(10, 2)]);
    await writer.finish();
    expect(errors).toHaveLength(1);
    expect((writer.failed as NodeJS.ErrnoException).code).toBe('EACCES');
    expect(writer.backlog()).toBe(0);
  });

  it('refuses to overwrite an existing file', async () => {
    const path = join(tmp, 'taken.bin');
    const first = new RecordingFileWriter(nodeRecordingFs, path, () => undefined);
    first.write([bytes(3, 1)]);
    await first.finish();
    const errors: Error[] = [];
    const second = new RecordingFileWriter(nodeRecordingFs, path, (err) => errors.push(err));
    second.write([bytes(3, 2)]);
    await second.finish();
    expect(errors.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['EEXIST']);
    expect(await readFile(path)).toEqual(bytes(3, 1));
  });
});

describe('describeWriteError', () => {
  it.each([
    [Object.assign(new Error('no space'), { code: 'ENOSPC' }), 'disk full (ENOSPC): no space left on the recordings file system'],
    [Object.assign(new Error('quota'), { code: 'EDQUOT' }), 'disk quota exceeded (EDQUOT)'],
    [Object.assign(new Error('i/o error'), { code: 'EIO' }), 'EIO: i/o error'],
    [Object.assign(new Error("EROFS: read-only file system, mkdir '/r/a'"), { code: 'EROFS' }), "EROFS: read-only file system, mkdir '/r/a'"],
    [new Error('something else'), 'something else'],
  ])('%s', (err, text) => {
    expect(describeWriteError(err)).toBe(text);
  });
});
