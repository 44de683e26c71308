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

/**
 * A function that hides, in a line of ffmpeg's output, what must not reach logs, status
 * or webhooks: each URL's credentials, query and (for RTMP) stream key. ffmpeg quotes its
 * inputs and outputs in its messages ("rtmp://host/app/KEY: Connection refused").
 */
export function secretRedactor(urls: readonly string[]): (line: string) => string {
  const pairs: [string, string][] = [];
  for (const url of urls) {
    if (isFileSource(url)) continue;
    pairs.push([url, redactSourceUrl(url)]);
    try {
      const u = new URL(url);
      if (u.password) pairs.push([u.password, '<redacted>']);
      if (u.search.length > 1) pairs.push([u.search.slice(1), '<redacted>']);
      const key = /^rtmps?:$/i.test(u.protocol) ? (u.pathname.split('/').pop() ?? '') : '';
      if (key.length >= 8) pairs.push([key, '<key redacted>']);
    } catch {
      // Not a URL the WHATWG parser takes: the whole string is still replaced.
    }
  }
  // Longest first, so a URL is replaced whole before its parts are.
  pairs.sort((a, b) => b[0].length - a[0].length);
  return (line) => pairs.reduce((text, [secret, shown]) => text.split(secret).join(shown), line);
}
