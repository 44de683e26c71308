import { z } from 'zod';
import { reconnectSchema } from './schema-restream.js';
import { intRange, objectName } from './schema-parts.js';

/**
 * What ffmpeg may be given as an input: a URL of a protocol it reads, or a file path.
 * Never something that starts with "-": it would be read as an option.
 */
export const ffmpegSourceUrl = z
  .string()
  .min(1, 'must not be empty')
  .max(2000, 'must be at most 2000 characters')
  .refine((s) => !s.startsWith('-'), 'must not start with "-"')
  .refine((s) => !/[\p{Cc}]/u.test(s), 'must not contain control characters');

/** A source flowrelay does not speak natively (HLS, HTTP-FLV, RTSP, files), read by one ffmpeg and remuxed. */
export const pullInputSchema = z
  .object({
    name: objectName,
    type: z.literal('pull'),
    /** http(s)://...m3u8, an HTTP-FLV URL, rtmp://, srt://, rtsp://, or a file path. */
    url: ffmpegSourceUrl,
    /**
     * Read at the media's own pace (ffmpeg -re). Default: on for files (which would
     * otherwise be read as fast as the disk allows), off for network sources, which
     * arrive at their own pace.
     */
    realtime: z.boolean().optional(),
    /** Play a file (or a finished playlist) again from the start when it ends. */
    loop: z.boolean().default(false),
    reconnect: reconnectSchema.prefault({}),
    /** No media from ffmpeg for this long: it is stopped and started again (the source may be stuck). */
    idleTimeoutMs: intRange(1_000, 600_000).default(15_000),
  })
  .strict();

export type PullInputConfig = z.output<typeof pullInputSchema>;

/** Whether a source names its scheme (`https:`, `rtmp:`, `file:`): a bare path has none. */
export function hasScheme(url: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(url);
}

/** Whether a source is a local file (no scheme, or file:). */
export function isFileSource(url: string): boolean {
  return !hasScheme(url) || url.toLowerCase().startsWith('file:');
}
