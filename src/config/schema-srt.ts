import { z } from 'zod';
import { cidrList, intRange, listen, listenAddress, listenerAccess, objectName, quantity, secretKey } from './schema-parts.js';
import { reconnectSchema } from './schema-restream.js';

/** A string of min..max bytes of UTF-8: libsrt counts bytes, not characters ("é" is two). */
const utf8Bytes = (min: number, max: number) =>
  z.string().superRefine((s, ctx) => {
    const bytes = Buffer.byteLength(s);
    if (bytes < min || bytes > max) ctx.addIssue({ code: 'custom', message: `must be ${min === 0 ? `at most ${max}` : `${min}..${max}`} bytes of UTF-8 (is ${bytes})` });
  });

/**
 * SRT settings. Passphrases are 10..79 bytes (libsrt's SRTO_PASSPHRASE limits), stream
 * ids at most 512 (SRT_STREAMID_MAX); pbkeylen 0 lets libsrt choose (AES-128 when a
 * passphrase is set). ffmpeg's SRT latency is in microseconds; ours is in milliseconds
 * like libsrt's SRTO_LATENCY.
 */
export const passphrase = utf8Bytes(10, 79);
const streamId = utf8Bytes(0, 512);
const pbkeylen = z.union([z.literal(0), z.literal(16), z.literal(24), z.literal(32)], { error: 'must be 0, 16, 24 or 32' }).default(0);
const latencyMs = intRange(20, 8_000).default(120);

/** srt://host:port, as a caller dials it. Query options belong in the config keys. */
const srtUrl = z.string().superRefine((url, ctx) => {
  const m = /^srt:\/\/(\[[^\]]+\]|[^:/?#\s]+):(\d{1,5})\/?$/.exec(url);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
    ctx.addIssue({ code: 'custom', message: 'must be srt://host:port (set streamId, passphrase and latency with their own keys)' });
  }
});

/** The shared SRT listener: publishers and players are routed by stream id. */
export const srtSectionSchema = z
  .object({
    listen: listen('0.0.0.0:9000'),
    latencyMs,
    /** Callers connected at once, in total and from one address; more are refused in the handshake. */
    maxConnections: intRange(1, 1_000_000).default(10_000),
    maxConnectionsPerAddress: intRange(1, 1_000_000).default(500),
    ...listenerAccess,
  })
  .strict();

const srtSecurity = { passphrase: passphrase.optional(), pbkeylen, latencyMs };

export const srtListenerInputSchema = z
  .object({
    name: objectName,
    type: z.literal('srt-listener'),
    /** `s=` in the stream id; generated when missing. A caller without a key is admitted only if a passphrase guards the input. */
    streamKey: secretKey.optional(),
    ...srtSecurity,
    /** A port of this input's own, instead of the shared srt.listen port. */
    listen: listenAddress.optional(),
    /** A publisher that sends no media for this long is closed (SRT keepalives hold a frozen encoder's connection open). */
    idleTimeoutMs: intRange(1_000, 600_000).default(15_000),
  })
  .strict();

export const srtCallerInputSchema = z
  .object({
    name: objectName,
    type: z.literal('srt-caller'),
    url: srtUrl,
    streamId: streamId.optional(),
    ...srtSecurity,
    reconnect: reconnectSchema.prefault({}),
    connectTimeoutMs: intRange(1_000, 120_000).default(5_000),
    /** Connected but no media for this long: reconnect. */
    idleTimeoutMs: intRange(1_000, 600_000).default(15_000),
  })
  .strict();

export const srtCallerOutputSchema = z
  .object({
    name: objectName,
    type: z.literal('srt-caller'),
    url: srtUrl,
    streamId: streamId.optional(),
    ...srtSecurity,
    enabled: z.boolean().default(true),
    reconnect: reconnectSchema.prefault({}),
    connectTimeoutMs: intRange(1_000, 120_000).default(5_000),
    idleDisconnectMs: intRange(0, 86_400_000).default(30_000),
    maxBacklog: quantity('bytes', [64 * 1024, '64Ki'], [256 * 1024 * 1024, '256Mi']).default(8 * 1024 * 1024),
  })
  .strict();

export const srtListenerOutputSchema = z
  .object({
    name: objectName,
    type: z.literal('srt-listener'),
    /** The port remote callers pull from; each caller gets the stream from a keyframe. */
    listen: listenAddress,
    ...srtSecurity,
    enabled: z.boolean().default(true),
    maxCallers: intRange(1, 1_000).default(20),
    /** Callers allowed to pull from this port; empty: anyone (with the passphrase, if set). */
    cidrs: cidrList.prefault([]),
  })
  .strict();
