import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nodeRecordingFs } from '../../src/recording/recording-fs.js';
import { RecordingIndex, type RecordingEntry } from '../../src/recording/recording-index.js';

const logger = pino({ level: 'silent' });

function entry(id: string, patch: Partial<RecordingEntry> = {}): RecordingEntry {
  return {
    id,
    flowId: 'cam',
    jobId: null,
    sessionId: 'ses_aaaaaaaaaaaa',
    segment: 0,
    format: 'mp4',
    file: `cam/${id}.mp4`,
    status: 'ready',
    startedAt: '2024-05-01T10:00:00.000Z',
    endedAt: '2024-05-01T11:00:00.000Z',
    durationMs: 3_600_000,
    bytes: 10,
    error: null,
    note: null,
    interrupted: false,
    ...patch,
  };
}

interface StoredIndex {
  version: number;
  recordings: RecordingEntry[];
}

describe('RecordingIndex', () => {
  let dir: string;

  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'flowrelay-index-')), 'recordings');
    await mkdir(dir, { recursive: true });
  });

  afterEach(async () => {
    await rm(dirname(dir), { recursive: true, force: true });
  });

  const indexFile = (): string => join(dir, 'index.json');
  const readStored = async (): Promise<StoredIndex> => JSON.parse(await readFile(indexFile(), 'utf8')) as StoredIndex;
  const writeStored = (recordings: RecordingEntry[]): Promise<void> => writeFile(indexFile(), JSON.stringify({ version: 1, recordings }));

  async function writeMedia(e: RecordingEntry, bytes: number): Promise<void> {
    const path = join(dir, e.file);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, Buffer.alloc(bytes, 7));
  }

  describe('load', () => {
    it('starts empty and writes nothing when there is no index yet', async () => {
      const index = await RecordingIndex.load(dir, nodeRecordingFs, logger);
      expect(index.list()).toEqual([]);
      expect(index.file).toBe(indexFile());
      await index.close();
      // close() writes the (empty) state: a daemon that stops leaves a readable index.
      expect((await readStored()).recordings).toEqual([]);
    });

    it('completes files that were being recorded when the daemon died, drops entries whose file is gone, and writes that back', async () => {
      const interrupted = entry('rec_interrupted', {
        // MPEG-TS: a torn last packet is left for readers to skip, so the file stays as it is.
        format: 'mpegts',
        file: 'cam/rec_interrupted.ts',
        status: 'recording',
        endedAt: null,
        durationMs: 42_500,
        // The index lags the file: the size on disk wins.
        bytes: 1000,
      });
      const ready = entry('rec_ready', { bytes: 300 });
      const gone = entry('rec_gone');
      const goneWhileRecording = entry('rec_gone_recording', { status: 'recording', endedAt: null });
      await writeMedia(interrupted, 4321);
      await writeMedia(ready, 300);
      await writeStored([interrupted, ready, gone, goneWhileRecording]);

      const index = await RecordingIndex.load(dir, nodeRecordingFs, logger);

      const expectedInterrupted: RecordingEntry = {
        ...interrupted,
        status: 'ready',
        interrupted: true,
        bytes: 4321,
        endedAt: '2024-05-01T10:00:42.500Z',
      };
      expect(index.get('rec_interrupted')).toEqual(expectedInterrupted);
      expect(index.get('rec_ready')).toEqual(ready);
      expect(index.get('rec_gone')).toBeUndefined();
      expect(index.get('rec_gone_recording')).toBeUndefined();
      expect(index.list().map((e) => e.id)).toEqual(['rec_interrupted', 'rec_ready']);

      // Written back by load itself, before anything else changes.
      const stored = await readStored();
      expect(stored.version).toBe(1);
      expect(stored.recordings).toEqual([expectedInterrupted, ready]);
      await index.close();
    });

    it('lists an interrupted file with its size on disk after load', async () => {
      // Not a playable fMP4: whatever load does to the file, the entry must match what is on disk.
      const torn = entry('rec_torn', { status: 'recording', endedAt: null, durationMs: 1000, bytes: 0 });
      await writeMedia(torn, 2500);
      await writeStored([torn]);
      const index = await RecordingIndex.load(dir, nodeRecordingFs, logger);
      const onDisk = await nodeRecordingFs.size(join(dir, torn.file));
      expect(onDisk).toBeDefined();
      expect(index.get('rec_torn')).toMatchObject({ status: 'ready', interrupted: true, bytes: onDisk, endedAt: '2024-05-01T10:00:01.000Z' });
      expect((await readStored()).recordings[0]?.bytes).toBe(onDisk);
      await index.close();
    });

    it('leaves an index that needs no reconciling as it is', async () => {
      const ready = entry('rec_ready');
      await writeMedia(ready, 10);
      const text = JSON.stringify({ version: 1, recordings: [ready] });
      await writeFile(indexFile(), text);
      const index = await RecordingIndex.load(dir, nodeRecordingFs, logger);
      expect(index.list()).toEqual([ready]);
      expect(await readFile(indexFile(), 'utf8')).toBe(text);
      await index.close();
    });

    it.each([
      ['garbage', 'this is {not json'],
      ['an empty file', ''],
      ['another version', JSON.stringify({ version: 99, recordings: [entry('rec_x')] })],
      ['no list', JSON.stringify({ version: 1, recordings: 'nope' })],
    ])('starts empty, without throwing, from %s, and keeps that file aside', async (_what, text) => {
      await writeFile(indexFile(), text);
      const index = await RecordingIndex.load(dir, nodeRecordingFs, logger);
      expect(index.list()).toEqual([]);
      index.add(entry('rec_new'));
      await index.flush();
      expect((await readStored()).recordings.map((e) => e.id)).toEqual(['rec_new']);
      await index.close();
      // Not overwritten: the list of every earlier recording may be in it.
      const aside = (await readdir(dirname(indexFile()))).filter((f) => f.startsWith('index.json.unreadable-'));
      expect(aside).toHaveLength(1);
      expect(await readFile(join(dirname(indexFile()), aside[0]!), 'utf8')).toBe(text);
    });
  });

  describe('persistence', () => {
    it('writes add, update and remove to disk', async () => {
      const index = await RecordingIndex.load(dir, nodeRecordingFs, logger);
      const a = entry('rec_a', { status: 'recording', endedAt: null, bytes: 0 });
      const b = entry('rec_b');

      index.add(a);
      index.add(b);
      await index.flush();
      expect((await readStored()).recordings).toEqual([a, b]);

      // A status change is written at once.
      index.update('rec_a', { status: 'ready', endedAt: '2024-05-01T10:30:00.000Z', bytes: 99 });
      await index.flush();
      expect((await readStored()).recordings[0]).toEqual({ ...a, status: 'ready', endedAt: '2024-05-01T10:30:00.000Z', bytes: 99 });

      index.remove('rec_b');
      await index.flush();
      expect((await readStored()).recordings.map((e) => e.id)).toEqual(['rec_a']);

      // An unknown id changes nothing.
      index.update('rec_nope', { bytes: 1 });
      index.remove('rec_nope');
      expect(index.list().map((e) => e.id)).toEqual(['rec_a']);
      await index.close();
    });

    it('writes held-back progress at close', async () => {
      const index = await RecordingIndex.load(dir, nodeRecordingFs, logger);
      const a = entry('rec_a', { status: 'recording', endedAt: null, bytes: 0, durationMs: 0 });
      index.add(a);
      await index.flush();
      // Progress (no status change) is held back a little; close must not lose it.
      index.update('rec_a', { bytes: 5000, durationMs: 2000 });
      expect(index.get('rec_a')).toMatchObject({ bytes: 5000, durationMs: 2000 });
      await index.close();
      expect((await readStored()).recordings).toEqual([{ ...a, bytes: 5000, durationMs: 2000 }]);
    });

    it('ends with the latest state after many quick changes, and leaves no temp files', async () => {
      const index = await RecordingIndex.load(dir, nodeRecordingFs, logger);
      for (let i = 0; i < 20; i++) index.add(entry(`rec_${i}`));
      for (let i = 0; i < 20; i += 2) index.remove(`rec_${i}`);
      await index.close();
      const ids = (await readStored()).recordings.map((e) => e.id);
      expect(ids).toEqual(Array.from({ length: 10 }, (_, i) => `rec_${2 * i + 1}`));
      expect(await readdir(dir)).toEqual(['index.json']);
    });

    it('a reloaded index sees what the previous one wrote', async () => {
      const first = await RecordingIndex.load(dir, nodeRecordingFs, logger);
      const a = entry('rec_a');
      await writeMedia(a, 10);
      first.add(a);
      await first.close();
      const second = await RecordingIndex.load(dir, nodeRecordingFs, logger);
      expect(second.list()).toEqual([a]);
      expect(second.path(a)).toBe(join(dir, 'cam', 'rec_a.mp4'));
      await second.close();
    });
  });
});
