import { isFileSource, type PullInputConfig } from '../config/schema-pull.js';

/**
 * ffmpeg arguments for a pull input: read the source, copy its first video and audio
 * stream (no re-encoding) into FLV on stdout, which the daemon reads as hub messages.
 * Pure: the same spec always gives the same array.
 */
export function pullArgs(spec: Pick<PullInputConfig, 'url' | 'realtime' | 'loop'>): string[] {
  const realtime = spec.realtime ?? isFileSource(spec.url);
  return [
    '-loglevel', 'warning',
    ...(realtime ? ['-re'] : []),
    ...(spec.loop ? ['-stream_loop', '-1'] : []),
    '-i', spec.url,
    // The first video and audio stream, whichever exist; data and subtitle streams have no place in FLV.
    '-map', '0:v:0?', '-map', '0:a:0?',
    '-c', 'copy',
    '-f', 'flv', '-flvflags', 'no_duration_filesize',
    'pipe:1',
  ];
}

/**
 * A source URL for logs and status: scheme, host and path, without credentials or query;
 * for RTMP the last path part (the stream key) is hidden as well.
 */
export function redactSourceUrl(url: string): string {
  if (isFileSource(url)) return url;
  try {
    const u = new URL(url);
    if (/^rtmps?:$/i.test(u.protocol)) return `${u.protocol}//${u.host}${u.pathname.replace(/[^/]+$/, '<key redacted>')}`;
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return url.replace(/[?#].*$/, '').replace(/\/\/[^/@]*@/, '//');
  }
}
