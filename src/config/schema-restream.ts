import { z } from 'zod';
import { parseRtmpUrl } from '../rtmp/client/url.js';
import { intRange, nonEmpty, objectName, quantity } from './schema-parts.js';

/** Hard ceiling for `limits.maxOutputsPerFlow` (DESIGN: up to 50 per flow by default). */
export const MAX_OUTPUTS_PER_FLOW_CEILING = 500;

/** An rtmp:// or rtmps:// URL the client can connect to (checked by the same parser it uses). */
function rtmpUrlCheck(withStreamName: boolean) {
  return (url: string, ctx: z.RefinementCtx): void => {
    try {
      // Without a stream name in it, 'probe' stands in for the streamKey key.
      parseRtmpUrl(url, withStreamName ? undefined : 'probe');
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  };
}

const rtmpUrl = z.string().superRefine(rtmpUrlCheck(false));

/**
 * The URL and streamKey together, as the client will join them: a URL without a stream
 * name passes the field check (the key may come separately) but needs a streamKey.
 */
function urlWithKeyCheck(o: { url: string; streamKey?: string | undefined }, ctx: z.RefinementCtx): void {
  if (o.streamKey !== undefined) return;
  try {
    // A URL the field check refused is reported there already.
    parseRtmpUrl(o.url, 'probe');
  } catch {
    return;
  }
  try {
    parseRtmpUrl(o.url);
  } catch (err) {
    ctx.addIssue({ code: 'custom', path: ['url'], message: (err as Error).message });
  }
}

/** A whole rtmp:// or rtmps:// URL, stream name included (record jobs, task destinations). */
export const fullRtmpUrl = z.string().max(2000, 'must be at most 2000 characters').superRefine(rtmpUrlCheck(true));

/**
 * Exponential backoff with jitter between attempts; after `failAfter` consecutive
 * failures the status says failed_to_connect / failed_to_reconnect, and with `giveUp`
 * the attempts stop there instead of continuing at `maxDelayMs`.
 */
export const reconnectSchema = z
  .object({
    initialDelayMs: intRange(100, 60_000).default(1_000),
    maxDelayMs: intRange(1_000, 600_000).default(30_000),
    /** A connection that stayed up this long resets the delay to its initial value. */
    resetAfterMs: intRange(1_000, 3_600_000).default(60_000),
    failAfter: intRange(1, 1_000).default(5),
    giveUp: z.boolean().default(false),
  })
  .strict()
  .refine((r) => r.maxDelayMs >= r.initialDelayMs, { message: 'maxDelayMs must be at least initialDelayMs', path: ['maxDelayMs'] });

/** TLS for rtmps:// destinations and sources: verified against the system CAs by default. */
export const clientTlsSchema = z
  .object({
    /** PEM file with extra CA certificates to trust (a private CA). */
    ca: nonEmpty.optional(),
    /** false turns certificate verification off; only for endpoints you control. */
    verify: z.boolean().default(true),
  })
  .strict();

/** How a client connection checks an rtmps:// peer's certificate (outputs, pulls, tasks, record jobs, peers). */
export type ClientTlsConfig = z.output<typeof clientTlsSchema>;

/** Settings every RTMP client connection has, outputs and pulls alike. */
const clientFields = {
  url: rtmpUrl,
  /** Appended to the URL's path as the stream name; keeps the key out of the URL. */
  streamKey: z.string().min(1, 'must not be empty').max(2_000).optional(),
  tls: clientTlsSchema.prefault({}),
  reconnect: reconnectSchema.prefault({}),
  connectTimeoutMs: intRange(1_000, 120_000).default(10_000),
  handshakeTimeoutMs: intRange(1_000, 120_000).default(10_000),
};

export const rtmpOutputSchema = z
  .object({
    name: objectName,
    type: z.literal('rtmp'),
    ...clientFields,
    enabled: z.boolean().default(true),
    /** With no live input for this long the output disconnects (0: stays connected); it reconnects when the input returns. */
    idleDisconnectMs: intRange(0, 86_400_000).default(30_000),
    /** Bytes queued towards a slow destination before it skips to the next keyframe. */
    maxBacklog: quantity('bytes', [64 * 1024, '64Ki'], [256 * 1024 * 1024, '256Mi']).default(8 * 1024 * 1024),
  })
  .strict()
  .superRefine(urlWithKeyCheck);

export const rtmpPullInputSchema = z
  .object({
    name: objectName,
    type: z.literal('rtmp-pull'),
    ...clientFields,
    /** Playing but no media for this long: reconnect (the upstream may have gone silent). */
    idleTimeoutMs: intRange(1_000, 600_000).default(15_000),
  })
  .strict()
  .superRefine(urlWithKeyCheck);
