import { isFileSource } from '../config/schema-pull.js';
import type { TaskConfig } from '../config/schema-tasks.js';
import type { ClientTlsConfig } from '../config/schema-restream.js';

/** One entry of a files task's play order: a file, and where in it to start. */
export interface PlayEntry {
  url: string;
  /** Seconds into the file (ffconcat `inpoint`); 0 for the start. */
  inpointSeconds: number;
}

type FilesSource = Extract<TaskConfig['source'], { type: 'files' }>;

/** Passes of the list when repeat is -1 and the durations are not known: a day of one-second files. */
const UNKNOWN_LENGTH_PASSES = 86_400;
/**
 * Entries in one play order at most (the concat list is written to disk and read by
 * ffmpeg). A list repeating until the end time may need more; the task starts the next
 * run from the schedule when this one ends.
 */
const MAX_ENTRIES = 200_000;

/**
 * The order a files task plays: from fileIndex at offsetSeconds to the end of the list,
 * then the whole list `repeat` more times (-1: until `untilSeconds` of media, when the
 * durations are known). `skipSeconds` resumes a task that was already playing (a daemon
 * restart, a retry): that much of the schedule is passed over, whole passes of the list
 * by arithmetic, so the destination continues where it was however long the task has
 * run. An empty order: the playlist is over. Pure.
 */
export function playOrder(source: FilesSource, durations: readonly number[] | undefined, untilSeconds: number, skipSeconds = 0, maxEntries = MAX_ENTRIES): PlayEntry[] {
  const { urls, fileIndex, offsetSeconds, repeat } = source;
  const known = durations !== undefined && durations.length === urls.length && durations.every((d) => d > 0);
  const total = known ? durations.reduce((a, b) => a + b, 0) : 0;
  const pass = urls.map((url) => ({ url, inpointSeconds: 0 }));
  let current: PlayEntry[] = urls.slice(fileIndex).map((url, i) => ({ url, inpointSeconds: i === 0 ? offsetSeconds : 0 }));
  // Whole passes of the list still to come after `current`; -1: as many as the time left needs.
  let passesAfter = repeat;
  if (known && skipSeconds > 0) {
    const lengthOf = (e: PlayEntry) => durations[urls.indexOf(e.url)]! - e.inpointSeconds;
    let skip = skipSeconds;
    const first = current.reduce((sum, e) => sum + lengthOf(e), 0);
    if (skip >= first) {
      skip -= first;
      const passesDone = Math.floor(skip / total);
      skip -= passesDone * total;
      if (repeat >= 0 && passesDone >= repeat) return [];
      current = pass;
      if (repeat >= 0) passesAfter = repeat - passesDone - 1;
    }
    current = startingAt(current, skip, lengthOf);
  }
  const passes = passesAfter >= 0 ? passesAfter : known ? Math.ceil(untilSeconds / total) + 1 : UNKNOWN_LENGTH_PASSES;
  const order = [...current];
  for (let p = 0; p < passes && order.length < maxEntries; p++) order.push(...pass);
  return order;
}

/** `entries` from `seconds` in (less than their length); `lengthOf` is an entry's length from its inpoint. */
function startingAt(entries: readonly PlayEntry[], seconds: number, lengthOf: (e: PlayEntry) => number): PlayEntry[] {
  let left = seconds;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    const length = lengthOf(entry);
    if (left < length) return [{ url: entry.url, inpointSeconds: entry.inpointSeconds + left }, ...entries.slice(i + 1)];
    left -= length;
  }
  return [];
}

/** Quotes a path or URL for an ffconcat `file` line. */
function quote(s: string): string {
  return `'${s.replace(/'/g, "'\\''")}'`;
}

/** The ffconcat script for a play order. */
export function concatScript(order: readonly PlayEntry[]): string {
  const lines = ['ffconcat version 1.0'];
  for (const e of order) {
    lines.push(`file ${quote(e.url)}`);
    if (e.inpointSeconds > 0) lines.push(`inpoint ${e.inpointSeconds.toFixed(3)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Where a task pushes: an rtmp(s):// URL, and how an rtmps:// one's certificate is checked. */
export interface TaskDestination {
  url: string;
  tls: ClientTlsConfig;
}

/**
 * ffmpeg verifies no certificate unless told to: without `-tls_verify` a task would hand
 * its stream key to whoever answers. With `-ca_file` GnuTLS trusts that file instead of
 * the system CAs.
 */
function destinationTls({ url, tls }: TaskDestination): string[] {
  if (!/^rtmps:/i.test(url) || !tls.verify) return [];
  return ['-tls_verify', '1', ...(tls.ca !== undefined ? ['-ca_file', tls.ca] : [])];
}

const OUTPUT = (destination: TaskDestination) => ['-map', '0:v:0?', '-map', '0:a:0?', '-c', 'copy', '-f', 'flv', '-flvflags', 'no_duration_filesize', ...destinationTls(destination), destination.url];

/** ffmpeg arguments of a live task: pull the source, copy it to the destination. */
export function liveTaskArgs(url: string, destination: TaskDestination): string[] {
  return ['-loglevel', 'warning', '-i', url, ...OUTPUT(destination)];
}

/**
 * ffmpeg arguments of a files task: the concat demuxer reads the play order at real-time
 * pace, with one continuous timeline across files (what the destination needs), and
 * copies it to the destination.
 */
export function filesTaskArgs(concatFile: string, order: readonly PlayEntry[], destination: TaskDestination): string[] {
  const remote = order.some((e) => !isFileSource(e.url));
  return [
    '-loglevel', 'warning',
    '-re',
    '-f', 'concat', '-safe', '0',
    ...(remote ? ['-protocol_whitelist', 'file,http,https,tcp,tls,crypto'] : []),
    '-i', concatFile,
    ...OUTPUT(destination),
  ];
}
