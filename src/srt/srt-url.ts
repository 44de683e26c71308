import type { PbKeyLen, SrtCallOptions } from './types.js';

/** host and port of an `srt://host:port` URL (validated by the config schema). */
export function parseSrtUrl(url: string): { host: string; port: number } {
  const m = /^srt:\/\/(\[([^\]]+)\]|[^:/?#\s]+):(\d{1,5})\/?$/.exec(url);
  if (!m) throw new Error(`not an srt://host:port URL`);
  return { host: m[2] ?? m[1]!, port: Number(m[3]) };
}

/** The parts of an `srt-caller` input or output spec that say how to call. */
export interface SrtCallSpec {
  url: string;
  latencyMs: number;
  connectTimeoutMs: number;
  streamId?: string;
  passphrase?: string;
  pbkeylen: PbKeyLen;
}

/**
 * The runtime.call options of an `srt-caller` spec, and the `srt://host:port` target it
 * reports. pbkeylen goes along only with a passphrase.
 */
export function callOptionsFor(spec: SrtCallSpec): { target: string; options: SrtCallOptions } {
  const { host, port } = parseSrtUrl(spec.url);
  return {
    target: `srt://${host}:${port}`,
    options: {
      host,
      port,
      latencyMs: spec.latencyMs,
      connectTimeoutMs: spec.connectTimeoutMs,
      ...(spec.streamId !== undefined && { streamId: spec.streamId }),
      ...(spec.passphrase !== undefined && { passphrase: spec.passphrase, pbkeylen: spec.pbkeylen }),
    },
  };
}
