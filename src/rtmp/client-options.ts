import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { RtmpOutputConfig, RtmpPullInputConfig } from '../config/schema.js';
import { FlowrelayError } from '../lib/errors.js';
import type { RtmpClientOptions } from './client/types.js';
import { parseRtmpUrl } from './client/url.js';

/**
 * The chunk size outputs and pulls send: what OBS and ffmpeg send, which every ingest
 * service takes. `rtmp.chunkSize` (default 65536) is for players, whose messages are
 * chunked once for all of them and go out without a copy when they fit one chunk.
 */
const CLIENT_CHUNK_SIZE = 4096;

/** Client-wide settings that come from the daemon's rtmp section, not from each output. */
export interface RtmpClientDefaults {
  maxMessageSize: number;
}

/**
 * RtmpClientOptions for an output or pull input from its config. The CA file is read
 * here, once per (re)start of the output, so a bad path fails that output only.
 */
export function clientOptionsFor(
  spec: RtmpOutputConfig | RtmpPullInputConfig,
  mode: 'publish' | 'play',
  defaults: RtmpClientDefaults,
  logger: Logger,
): RtmpClientOptions {
  const target = parseRtmpUrl(spec.url, spec.streamKey);
  let ca: Buffer | undefined;
  if (spec.tls.ca !== undefined) {
    try {
      ca = readFileSync(spec.tls.ca);
    } catch (err) {
      throw new FlowrelayError('TLS_CA_UNREADABLE', `cannot read tls.ca ${spec.tls.ca}: ${(err as Error).message}`);
    }
  }
  return {
    target,
    mode,
    tls: { ...(ca && { ca }), rejectUnauthorized: spec.tls.verify },
    connectTimeoutMs: spec.connectTimeoutMs,
    handshakeTimeoutMs: spec.handshakeTimeoutMs,
    chunkSize: CLIENT_CHUNK_SIZE,
    maxMessageSize: defaults.maxMessageSize,
    logger,
  };
}
