import type { RecordingEntry } from './recording-index.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The recordings older than their retention: ended (or, for a file that never recorded
 * an end, started) more than `deleteAfterDays(entry)` days before `now`. Files still
 * being written and files without a rule are never returned.
 */
export function expiredRecordings(entries: readonly RecordingEntry[], now: number, deleteAfterDays: (entry: RecordingEntry) => number | undefined): RecordingEntry[] {
  return entries.filter((entry) => {
    if (entry.status === 'recording') return false;
    const days = deleteAfterDays(entry);
    if (days === undefined) return false;
    const ended = Date.parse(entry.endedAt ?? entry.startedAt);
    return Number.isFinite(ended) && now - ended > days * DAY_MS;
  });
}
