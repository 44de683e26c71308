/**
 * SRT stream ids as flowrelay routes them on a shared port:
 * - the SRT access-control form `#!::r=<resource>,m=<mode>,s=<session/key>,u=<user>,...`
 *   (libsrt docs/features/access-control.md: keys r, m, s, u, h, t; mode publish|request|bidirectional);
 * - a plain `<flowId>` (what simple encoders let you type), meaning publish with no key.
 * Pure: the string in, a typed request out.
 */
export interface SrtStreamRequest {
  flowId: string;
  mode: 'publish' | 'request';
  /** The key from `s=` (stream key for publish, playback key for request). */
  key: string | undefined;
}

export type StreamIdParse = { ok: true; request: SrtStreamRequest } | { ok: false; reason: string };

const ACCESS_CONTROL_PREFIX = '#!::';
/** SRTO_STREAMID is at most 512 bytes. */
const MAX_STREAM_ID = 512;
const FLOW_ID = /^[a-z0-9-]{1,64}$/;

export function parseStreamId(streamId: string): StreamIdParse {
  if (streamId.length === 0) return { ok: false, reason: 'empty stream id' };
  if (streamId.length > MAX_STREAM_ID) return { ok: false, reason: 'stream id longer than 512 characters' };
  if (!streamId.startsWith(ACCESS_CONTROL_PREFIX)) {
    return FLOW_ID.test(streamId)
      ? { ok: true, request: { flowId: streamId, mode: 'publish', key: undefined } }
      : { ok: false, reason: 'stream id is neither a flow id nor #!:: access-control syntax' };
  }
  const fields = new Map<string, string>();
  for (const pair of streamId.slice(ACCESS_CONTROL_PREFIX.length).split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) return { ok: false, reason: 'malformed key=value pair in stream id' };
    const key = pair.slice(0, eq);
    if (fields.has(key)) return { ok: false, reason: `stream id repeats key ${key}` };
    fields.set(key, pair.slice(eq + 1));
  }
  const flowId = fields.get('r');
  if (flowId === undefined || !FLOW_ID.test(flowId)) return { ok: false, reason: 'stream id has no valid r=<flowId>' };
  const mode = fields.get('m') ?? 'request';
  if (mode !== 'publish' && mode !== 'request') return { ok: false, reason: `unsupported mode m=${mode}` };
  return { ok: true, request: { flowId, mode, key: fields.get('s') } };
}

/**
 * A stream id as it may be logged: the `s=` value (a stream or playback key) is replaced,
 * and a plain stream id is not shown at all: on an input's own port it may be the key
 * itself, and a hand-written key can look like a flow id.
 */
export function redactStreamId(streamId: string): string {
  if (streamId.startsWith(ACCESS_CONTROL_PREFIX)) return streamId.replace(/(^#!::|,)s=[^,]*/g, '$1s=<redacted>');
  return streamId === '' ? '' : '<redacted>';
}
