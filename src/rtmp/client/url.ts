import { isIPv6 } from 'node:net';
import { FlowrelayError } from '../../lib/errors.js';
import type { RtmpTarget } from './types.js';

const DEFAULT_PORTS = { rtmp: 1935, rtmps: 443 } as const;

function bad(message: string): FlowrelayError {
  return new FlowrelayError('BAD_RTMP_URL', message);
}

/**
 * Parses `rtmp(s)://host[:port]/app[/instance]/streamName[?query]`.
 *
 * Parsed by hand rather than with WHATWG `URL`: that percent-encodes paths and query
 * strings, and stream keys must reach the server byte for byte. Error messages never
 * repeat the URL, since it may hold the stream key.
 *
 * With `streamKey` (services hand out a server URL and a key separately, e.g. YouTube's
 * `rtmp://a.rtmp.youtube.com/live2` + key), the whole path is the app. A query string in
 * the URL belongs to the stream name either way: that is where services put tokens, and
 * the name is what `publish`/`play` carry.
 */
export function parseRtmpUrl(url: string, streamKey?: string): RtmpTarget {
  const trimmed = url.trim();
  if (/[\s\p{Cc}]/u.test(trimmed)) throw bad('RTMP URL contains whitespace or control characters');
  const schemeMatch = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(trimmed);
  if (!schemeMatch) throw bad('RTMP URL must start with rtmp:// or rtmps://');
  const scheme = schemeMatch[1]!.toLowerCase();
  if (scheme !== 'rtmp' && scheme !== 'rtmps') throw bad(`unsupported URL scheme '${scheme}://' (expected rtmp:// or rtmps://)`);
  const secure = scheme === 'rtmps';

  const afterScheme = trimmed.slice(schemeMatch[0].length);
  const authorityEnd = afterScheme.search(/[/?]/);
  const authority = authorityEnd < 0 ? afterScheme : afterScheme.slice(0, authorityEnd);
  const remainder = authorityEnd < 0 ? '' : afterScheme.slice(authorityEnd);
  const { host, port, explicitPort } = parseAuthority(authority, DEFAULT_PORTS[scheme]);

  const queryStart = remainder.indexOf('?');
  const path = (queryStart < 0 ? remainder : remainder.slice(0, queryStart)).replace(/^\/+/, '');
  const query = queryStart < 0 ? '' : remainder.slice(queryStart);

  let app: string;
  let streamName: string;
  const key = streamKey?.trim();
  if (key !== undefined) {
    if (key === '') throw bad('stream key is empty');
    app = path.replace(/\/+$/, '');
    streamName = joinQuery(key, query);
  } else {
    const slash = path.lastIndexOf('/');
    app = slash < 0 ? path : path.slice(0, slash).replace(/\/+$/, '');
    const name = slash < 0 ? '' : path.slice(slash + 1);
    if (app !== '' && name === '') throw bad('RTMP URL has no stream name: end it with /<stream key> or give the key separately');
    streamName = name + query;
  }
  if (app === '') throw bad('RTMP URL has no application name (rtmp://host/<app>/<stream key>)');

  const hostPart = isIPv6(host) ? `[${host}]` : host;
  const tcUrl = `${scheme}://${hostPart}${explicitPort ? `:${port}` : ''}/${app}`;
  return { secure, host, port, app, tcUrl, streamName };
}

function joinQuery(name: string, query: string): string {
  if (query === '' || query === '?') return name;
  return name.includes('?') ? `${name}&${query.slice(1)}` : name + query;
}

function parseAuthority(authority: string, defaultPort: number): { host: string; port: number; explicitPort: boolean } {
  if (authority.includes('@')) throw bad('credentials in RTMP URLs are not supported (put tokens in the stream key or query)');
  let host: string;
  let portText: string | undefined;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) throw bad('RTMP URL has an unterminated IPv6 address');
    host = authority.slice(1, close);
    if (!isIPv6(host)) throw bad('RTMP URL has an invalid IPv6 address in brackets');
    const after = authority.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) throw bad('RTMP URL has unexpected characters after the IPv6 address');
    portText = after === '' ? undefined : after.slice(1);
  } else {
    const parts = authority.split(':');
    if (parts.length > 2) throw bad('RTMP URL host has several colons: write IPv6 addresses in brackets, e.g. rtmp://[::1]/app');
    host = parts[0]!;
    portText = parts[1];
  }
  if (host === '') throw bad('RTMP URL has no host');
  if (portText === undefined) return { host, port: defaultPort, explicitPort: false };
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) throw bad(`RTMP URL has an invalid port '${portText}' (expected 1-65535)`);
  return { host, port, explicitPort: true };
}

/** `rtmp(s)://host:port/app/<key redacted>`: for logs and status, never the key. */
export function describeTarget(t: RtmpTarget): string {
  const host = isIPv6(t.host) ? `[${t.host}]` : t.host;
  return `${t.secure ? 'rtmps' : 'rtmp'}://${host}:${t.port}/${t.app}/<key redacted>`;
}
