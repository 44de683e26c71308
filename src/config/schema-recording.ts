import { z } from 'zod';
import { checkPathTemplate } from '../recording/path-template.js';
import { httpUrl, intRange, quantity } from './schema-parts.js';
import { clientTlsSchema, fullRtmpUrl } from './schema-restream.js';

export const RECORDING_FORMATS = ['mp4', 'mpegts', 'flv'] as const;

/** How each flow is recorded (`recording:` in a flow). */
export const recordingSchema = z
  .object({
    /** automatic: a recording starts when an input goes live; off: never. */
    mode: z.enum(['off', 'automatic']).default('off'),
    /** mp4 is fragmented (playable up to its last fragment after a crash); mpegts and flv are streams by nature. */
    format: z.enum(RECORDING_FORMATS).default('mp4'),
    /** A new file is started at the first keyframe after this many seconds. */
    segmentSeconds: intRange(1, 86_400).default(3600),
    /** A publisher that comes back within this time continues the same recording. */
    timeoutSeconds: intRange(0, 86_400).default(30),
    /** Recordings that ended longer ago than this are deleted; absent: kept until deleted by hand or API. */
    deleteAfterDays: intRange(1, 36_500).optional(),
    /**
     * File name under <storage.dir>/recordings, without extension. Placeholders:
     * {flowId}, {date} (YYYY-MM-DD, UTC), {time} (HH-MM-SS, UTC), {id} (the recording id).
     */
    path: z
      .string()
      .superRefine((template, ctx) => {
        const problem = checkPathTemplate(template);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .default('{flowId}/{flowId}_{date}_{time}'),
  })
  .strict();

/** Where recordings and runtime state live, and how full the disk may get. */
export const storageSchema = z
  .object({
    dir: z.string().min(1, 'must not be empty').default('./data'),
    /** Below this much free space no recording starts, and running ones stop (cleanly) with status low_disk_space. */
    minFreeSpace: quantity('bytes', [0, '0'], [Number.MAX_SAFE_INTEGER, '8Pi']).default(1024 * 1024 * 1024),
    /** Bytes a recording may have waiting for the disk; beyond it frames are dropped to the next keyframe (and counted). */
    maxWriteBacklog: quantity('bytes', [1024 * 1024, '1Mi'], [1024 * 1024 * 1024, '1Gi']).default(64 * 1024 * 1024),
  })
  .strict();

/** One-off recordings of an rtmp:// URL (POST /v1/record-jobs). */
export const recordJobsSchema = z
  .object({
    /** A job whose URL delivers no media within this time fails. */
    waitSeconds: intRange(1, 86_400).default(180),
    /** After the stream stops, a job waits this long for it to return before it completes. */
    timeoutSeconds: intRange(0, 86_400).default(30),
    /** Jobs waiting or recording at once; more are refused. */
    maxActive: intRange(1, 10_000).default(50),
    /** Job recordings that ended longer ago than this are deleted; absent: kept. */
    deleteAfterDays: intRange(1, 36_500).optional(),
    /** Finished jobs kept in the list (the oldest are forgotten; their recordings stay). */
    keepFinished: intRange(0, 100_000).default(1000),
  })
  .strict();

/** POST /v1/record-jobs: what to record and where to report. */
export const recordJobRequestSchema = z
  .object({
    name: z.string().min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
    /** The stream to record (rtmp:// or rtmps://, key included). */
    url: fullRtmpUrl,
    format: z.enum(RECORDING_FORMATS).default('mp4'),
    /** Receives the job's events (signed like webhooks). */
    notifyUrl: httpUrl.optional(),
    /** Signs notifyUrl deliveries; generated (and shown in the answer) when absent. */
    notifySecret: z.string().min(16, 'must be at least 16 characters').max(200).optional(),
    /** Overrides recordJobs.waitSeconds for this job. */
    waitSeconds: intRange(1, 86_400).optional(),
    /** rtmps:// URLs: `ca` (an absolute path) to trust a private CA, `verify: false` to skip the check. */
    tls: clientTlsSchema.optional(),
  })
  .strict();

export type RecordJobRequest = z.output<typeof recordJobRequestSchema>;
