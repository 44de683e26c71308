import { z } from 'zod';
import { ffmpegSourceUrl } from './schema-pull.js';
import { httpUrl, intRange } from './schema-parts.js';
import { clientTlsSchema, fullRtmpUrl } from './schema-restream.js';

/** Files a files task may play. */
export const MAX_TASK_FILES = 30;

const SCHEMES: Record<string, RegExp> = {
  rtmp: /^rtmps?:\/\//i,
  srt: /^srt:\/\//i,
  'http-flv': /^https?:\/\//i,
  hls: /^https?:\/\//i,
};

/** A live stream to relay: its protocol says which URL schemes fit. */
const liveSourceSchema = z
  .object({
    type: z.literal('live'),
    protocol: z.enum(['rtmp', 'srt', 'http-flv', 'hls']),
    url: ffmpegSourceUrl,
  })
  .strict()
  .superRefine((s, ctx) => {
    const scheme = SCHEMES[s.protocol];
    if (scheme && !scheme.test(s.url)) ctx.addIssue({ code: 'custom', path: ['url'], message: `does not fit protocol ${s.protocol} (expected ${s.protocol === 'rtmp' ? 'rtmp:// or rtmps://' : s.protocol === 'srt' ? 'srt://' : 'http:// or https://'})` });
  });

/** A playlist of files (paths or URLs), played in order from fileIndex at offsetSeconds. */
const filesSourceSchema = z
  .object({
    type: z.literal('files'),
    urls: z.array(ffmpegSourceUrl).min(1, 'list at least one file').max(MAX_TASK_FILES, `at most ${MAX_TASK_FILES} files`),
    /** Times the whole list is played again after the first pass: 0 none, -1 until endTime. */
    repeat: z.int({ error: 'must be a whole number' }).min(-1, 'must be -1 (until endTime), 0 or more').max(10_000).default(0),
    /** Where the first pass starts. */
    fileIndex: z.int({ error: 'must be a whole number' }).min(0).default(0),
    offsetSeconds: z.number().min(0).max(86_400).default(0),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (Array.isArray(s.urls) && s.fileIndex >= s.urls.length) ctx.addIssue({ code: 'custom', path: ['fileIndex'], message: `must be below the number of files (${s.urls.length})` });
  });

const isoTime = z.iso.datetime({ offset: true, error: 'must be a UTC ISO-8601 time such as 2026-11-22T18:00:00Z' });

/** The message of a task whose end is not after its start (and, through the API, after now). */
export const ILLEGAL_DURATION = 'illegal_duration';

/** A scheduled pull-to-push job (`tasks:` in the config, /v1/tasks in the API). */
export const taskSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9-]{1,64}$/, 'must be 1..64 characters of a-z 0-9 -'),
    name: z.string().min(1).max(200).optional(),
    source: z.discriminatedUnion('type', [liveSourceSchema, filesSourceSchema], { error: 'source.type must be live or files' }),
    /** One rtmp:// or rtmps:// URL; no two tasks push to the same one. */
    destination: fullRtmpUrl,
    /** rtmps:// destinations: the certificate is verified (against `ca`, or the system CAs). */
    tls: clientTlsSchema.prefault({}),
    startTime: isoTime,
    endTime: isoTime,
    retry: z
      .object({
        intervalSeconds: intRange(60, 300).default(60),
        count: intRange(0, 10).default(3),
      })
      .strict()
      .prefault({}),
    /** Receives the task's status and exit events, signed with callbackSecret like webhooks. */
    callbackUrl: httpUrl.optional(),
    callbackSecret: z.string().min(16, 'must be at least 16 characters').optional(),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (typeof t.startTime === 'string' && typeof t.endTime === 'string' && Date.parse(t.endTime) <= Date.parse(t.startTime)) {
      ctx.addIssue({ code: 'custom', path: ['endTime'], message: `${ILLEGAL_DURATION}: endTime must be after startTime` });
    }
    if (t.callbackUrl !== undefined && t.callbackSecret === undefined) {
      ctx.addIssue({ code: 'custom', path: ['callbackSecret'], message: 'required with callbackUrl (it signs the callbacks)' });
    }
  });

export type TaskConfig = z.output<typeof taskSchema>;

/**
 * What makes two destinations the same stream: the scheme and host in any case, the
 * port written or left to its default; the path (app and stream key) as written.
 */
export function destinationKey(url: string): string {
  const text = url.trim();
  try {
    const u = new URL(text);
    const port = u.port || (u.protocol === 'rtmps:' ? '443' : '1935');
    // rtmp: is not a scheme URL knows, so it leaves the host as written.
    return `${u.protocol}//${u.hostname.toLowerCase()}:${port}${u.pathname}${u.search}`;
  } catch {
    return text;
  }
}

/** Marks the issue of a second task to one destination, which the API answers as already_exists. */
export const DUPLICATE_DESTINATION = 'already_exists: ';

/** Task ids and destinations are unique; issues land on the later duplicate. */
export function checkTasks(tasks: unknown, ctx: { addIssue(i: { code: 'custom'; path: (string | number)[]; message: string }): void }): void {
  if (!Array.isArray(tasks)) return;
  const ids = new Map<string, number>();
  const destinations = new Map<string, string>();
  tasks.forEach((task: unknown, i) => {
    if (typeof task !== 'object' || task === null) return;
    const { id, destination } = task as { id?: unknown; destination?: unknown };
    if (typeof id === 'string') {
      if (ids.has(id)) ctx.addIssue({ code: 'custom', path: ['tasks', i, 'id'], message: `duplicate task id "${id}"` });
      else ids.set(id, i);
    }
    if (typeof destination === 'string') {
      const key = destinationKey(destination);
      const first = destinations.get(key);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path: ['tasks', i, 'destination'], message: `${DUPLICATE_DESTINATION}task "${first}" already pushes to this destination` });
      else destinations.set(key, typeof id === 'string' ? id : `tasks[${i}]`);
    }
  });
}
