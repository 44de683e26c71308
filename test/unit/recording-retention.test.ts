import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { nodeRecordingFs, type RecordingFileSystem } from '../../src/recording/recording-fs.js';
import type { RecordingEntry } from '../../src/recording/recording-index.js';
import { RETENTION_INTERVAL_MS, RecordingService, type RecordingServiceOptions } from '../../src/recording/recording-service.js';
import { expiredRecordings } from '../../src/recording/retention.js';
import { FakeClock } from '../helpers/fake-clock.js';

const DAY = 24 * 60 * 60 * 1000;
const iso = (ms: number): string => new Date(ms).toISOString();

let nextId = 1;

/** A whole entry: ready, of flow `cam`, ended `endedAt` (ISO) and started an hour before. */
function entry(patch: Partial<RecordingEntry> & { endedAt: string | null }): RecordingEntry {
  const id = patch.id ?? `rec_${String(nextId++).padStart(16, '0')}`;
  const startedAt = patch.startedAt ?? iso(Date.parse(patch.endedAt ?? '2024-01-01T00:00:00Z') - 60 * 60 * 1000);
  return {
    id,
    flowId: 'cam',
    jobId: null,
    sessionId: 'ses_000000000000',
    segment: 0,
    format: 'mpegts',
    file: `cam/${id}.ts`,
    status: 'ready',
    durationMs: 3_600_000,
    bytes: 4,
    error: null,
    note: null,
    interrupted: false,
    ...patch,
    startedAt,
  };
}

describe('expiredRecordings', () => {
  const now = Date.parse('2024-06-30T12:00:00Z');
  const sevenDays = (): number => 7;

  it('returns entries that ended more than N days ago, and nothing newer', () => {
    const old = entry({ endedAt: iso(now - 8 * DAY) });
    const newer = entry({ endedAt: iso(now - 6 * DAY) });
    const justOver = entry({ endedAt: iso(now - 7 * DAY - 1) });
    expect(expiredRecordings([old, newer, justOver], now, sevenDays)).toEqual([old, justOver]);
  });

  it('keeps an entry that ended exactly N days ago', () => {
    const boundary = entry({ endedAt: iso(now - 7 * DAY) });
    expect(expiredRecordings([boundary], now, sevenDays)).toEqual([]);
  });

  it('never returns a file still being recorded, however old', () => {
    const recording = entry({ status: 'recording', startedAt: iso(now - 400 * DAY), endedAt: null });
    expect(expiredRecordings([recording], now, sevenDays)).toEqual([]);
  });

  it('returns failed files past their retention too', () => {
    const failed = entry({ status: 'failed', error: 'disk full', endedAt: iso(now - 30 * DAY) });
    expect(expiredRecordings([failed], now, sevenDays)).toEqual([failed]);
  });

  it('keeps entries whose policy gives no rule', () => {
    const ofJob = entry({ flowId: null, jobId: 'job_1', endedAt: iso(now - 400 * DAY) });
    const ofCam = entry({ endedAt: iso(now - 400 * DAY) });
    const policy = (e: RecordingEntry): number | undefined => (e.flowId === 'cam' ? 7 : undefined);
    expect(expiredRecordings([ofJob, ofCam], now, policy)).toEqual([ofCam]);
  });

  it('uses startedAt when an entry has no end', () => {
    const oldStart = entry({ startedAt: iso(now - 8 * DAY), endedAt: null });
    const newStart = entry({ startedAt: iso(now - 6 * DAY), endedAt: null });
    expect(expiredRecordings([oldStart, newStart], now, sevenDays)).toEqual([oldStart]);
  });

  it('ignores an entry whose time cannot be read', () => {
    const broken = entry({ startedAt: 'not a date', endedAt: null });
    expect(expiredRecordings([broken], now, sevenDays)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------

/** The real file system, noting which files were removed (a sweep makes that call synchronously). */
function notingFs(): RecordingFileSystem & { removed: string[] } {
  const removed: string[] = [];
  return {
    ...nodeRecordingFs,
    removed,
    remove(path: string): Promise<void> {
      removed.push(path);
      return nodeRecordingFs.remove(path);
    },
  };
}

const exists = (path: string): Promise<boolean> => stat(path).then(
  () => true,
  () => false,
);

describe('RecordingService', () => {
  let tmp: string;
  let clock: FakeClock;
  let fs: ReturnType<typeof notingFs>;
  let service: RecordingService;
  let options: RecordingServiceOptions;

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'flowrelay-retention-'));
    clock = new FakeClock();
    fs = notingFs();
    options = { storageDir: tmp, minFreeBytes: 0, maxWriteBacklogBytes: 1 << 20 };
    service = await RecordingService.open(options, { fs, clock, events: () => undefined, logger: pino({ level: 'silent' }) });
    // Entries' dates are ISO strings: move well past the epoch so "N days ago" is a normal date.
    clock.advance(1000 * DAY);
    // That ran the free-space check; wait until it has scheduled its next one, so the
    // tests below can count timers.
    await vi.waitFor(() => expect(clock.pending).toBe(1));
  });

  afterEach(async () => {
    await service.close();
    await rm(tmp, { recursive: true, force: true });
  });

  /** A real file under <tmp>/recordings and its entry in the index. */
  async function addRecording(patch: Partial<RecordingEntry> & { endedAt: string | null }): Promise<{ entry: RecordingEntry; path: string }> {
    const e = entry(patch);
    const path = join(tmp, 'recordings', e.file);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, Buffer.from([1, 2, 3, 4]));
    service.index.add(e);
    return { entry: e, path };
  }

  const ids = (): string[] => service.index.list().map((e) => e.id).sort();

  const policy = (days: Record<string, number>) => (e: RecordingEntry): number | undefined => (e.flowId === null ? undefined : days[e.flowId]);

  it('sweep deletes old files from disk and index, and keeps new ones, unruled flows and files being written', async () => {
    const now = clock.now();
    const old = await addRecording({ endedAt: iso(now - 8 * DAY) });
    const fresh = await addRecording({ endedAt: iso(now - 6 * DAY) });
    const otherFlow = await addRecording({ flowId: 'studio', file: 'studio/a.ts', endedAt: iso(now - 500 * DAY) });
    const writing = await addRecording({ status: 'recording', startedAt: iso(now - 500 * DAY), endedAt: null });
    service.configure(options, policy({ cam: 7 }));

    const deleted = await service.sweep();

    expect(deleted.map((e) => e.id)).toEqual([old.entry.id]);
    expect(await exists(old.path)).toBe(false);
    expect(ids()).toEqual([fresh.entry.id, otherFlow.entry.id, writing.entry.id].sort());
    for (const kept of [fresh, otherFlow, writing]) expect(await readFile(kept.path)).toEqual(Buffer.from([1, 2, 3, 4]));

    // Two days on, the fresh one is past its seven days as well.
    clock.advance(2 * DAY);
    expect((await service.sweep()).map((e) => e.id)).toEqual([fresh.entry.id]);
    expect(await exists(fresh.path)).toBe(false);
    expect(ids()).toEqual([otherFlow.entry.id, writing.entry.id].sort());

    // The index on disk says so too.
    await service.index.flush();
    const stored = JSON.parse(await readFile(join(tmp, 'recordings', 'index.json'), 'utf8')) as { recordings: RecordingEntry[] };
    expect(stored.recordings.map((e) => e.id).sort()).toEqual([otherFlow.entry.id, writing.entry.id].sort());
  });

  it('deletes nothing before a policy is configured', async () => {
    const old = await addRecording({ endedAt: iso(clock.now() - 500 * DAY) });
    expect(await service.sweep()).toEqual([]);
    expect(await exists(old.path)).toBe(true);
    expect(ids()).toEqual([old.entry.id]);
  });

  it('drops the entry of an expired file that is already gone from disk', async () => {
    const old = await addRecording({ endedAt: iso(clock.now() - 8 * DAY) });
    await rm(old.path);
    service.configure(options, policy({ cam: 7 }));
    expect((await service.sweep()).map((e) => e.id)).toEqual([old.entry.id]);
    expect(ids()).toEqual([]);
  });

  it('startRetention sweeps at once and again every RETENTION_INTERVAL_MS of clock time', async () => {
    service.configure(options, policy({ cam: 7 }));
    const first = await addRecording({ endedAt: iso(clock.now() - 8 * DAY) });
    const timersBefore = clock.pending;

    service.startRetention();
    // The first sweep starts synchronously; the next one is scheduled when it is done.
    expect(fs.removed).toEqual([first.path]);
    await vi.waitFor(() => expect(clock.pending).toBe(timersBefore + 1));
    expect(ids()).toEqual([]);
    expect(await exists(first.path)).toBe(false);

    // Expired already, but nothing looks until the interval has passed.
    const second = await addRecording({ endedAt: iso(clock.now() - 8 * DAY) });
    clock.advance(RETENTION_INTERVAL_MS - 1);
    expect(fs.removed).toEqual([first.path]);
    clock.advance(1);
    expect(fs.removed).toEqual([first.path, second.path]);
    await vi.waitFor(() => expect(clock.pending).toBe(timersBefore + 1));
    expect(ids()).toEqual([]);
    expect(await exists(second.path)).toBe(false);
  });

  it('close stops the retention schedule', async () => {
    service.configure(options, policy({ cam: 7 }));
    const timersBefore = clock.pending;
    service.startRetention();
    await vi.waitFor(() => expect(clock.pending).toBe(timersBefore + 1));
    await service.close();
    expect(clock.pending).toBe(0);
    await addRecording({ endedAt: iso(clock.now() - 8 * DAY) });
    clock.advance(2 * RETENTION_INTERVAL_MS);
    expect(fs.removed).toEqual([]);
  });

  describe('delete', () => {
    it('answers not_found for an unknown id', async () => {
      expect(await service.delete('rec_nope')).toEqual({ ok: false, code: 'not_found', message: 'no recording with id "rec_nope"' });
    });

    it('refuses a file still being written, and leaves it alone', async () => {
      const writing = await addRecording({ status: 'recording', endedAt: null });
      const answer = await service.delete(writing.entry.id);
      expect(answer).toMatchObject({ ok: false, code: 'conflict' });
      expect(answer.ok ? '' : answer.message).toContain('still being written');
      expect(await exists(writing.path)).toBe(true);
      expect(ids()).toEqual([writing.entry.id]);
    });

    it('removes the file and the entry', async () => {
      const done = await addRecording({ endedAt: iso(clock.now() - DAY) });
      const kept = await addRecording({ endedAt: iso(clock.now() - DAY) });
      expect(await service.delete(done.entry.id)).toEqual({ ok: true });
      expect(await exists(done.path)).toBe(false);
      expect(ids()).toEqual([kept.entry.id]);
      expect(await exists(kept.path)).toBe(true);
      expect(await service.delete(done.entry.id)).toMatchObject({ ok: false, code: 'not_found' });
    });
  });
});
