import { describe, expect, it } from 'vitest';
import { FlowrelayError } from '../../src/lib/errors.js';
import { describeTarget, parseRtmpUrl } from '../../src/rtmp/client/url.js';

function badUrl(url: string, key?: string): FlowrelayError {
  try {
    parseRtmpUrl(url, key);
  } catch (err) {
    if (err instanceof FlowrelayError && err.code === 'BAD_RTMP_URL') return err;
    throw err;
  }
  throw new Error(`expected BAD_RTMP_URL for ${url}`);
}

describe('parseRtmpUrl', () => {
  it('splits rtmp://host/app/key with the default port 1935', () => {
    expect(parseRtmpUrl('rtmp://relay.example.com/live/abc123')).toEqual({
      secure: false,
      host: 'relay.example.com',
      port: 1935,
      app: 'live',
      tcUrl: 'rtmp://relay.example.com/live',
      streamName: 'abc123',
    });
  });

  it('uses 443 for rtmps:// and keeps an explicit port in tcUrl', () => {
    const t = parseRtmpUrl('rtmps://live-api-s.facebook.com/rtmp/FB-key');
    expect(t).toMatchObject({ secure: true, port: 443, app: 'rtmp', tcUrl: 'rtmps://live-api-s.facebook.com/rtmp', streamName: 'FB-key' });
    expect(parseRtmpUrl('rtmp://h:1936/live/k')).toMatchObject({ port: 1936, tcUrl: 'rtmp://h:1936/live' });
    expect(parseRtmpUrl('RTMPS://h:8443/live/k')).toMatchObject({ secure: true, port: 8443, tcUrl: 'rtmps://h:8443/live' });
  });

  it('accepts bracketed IPv6 addresses, with and without a port', () => {
    expect(parseRtmpUrl('rtmp://[::1]:19350/live/k')).toMatchObject({ host: '::1', port: 19350, tcUrl: 'rtmp://[::1]:19350/live' });
    expect(parseRtmpUrl('rtmp://[2001:db8::5]/live/k')).toMatchObject({ host: '2001:db8::5', port: 1935, tcUrl: 'rtmp://[2001:db8::5]/live' });
  });

  it('takes everything before the last segment as the app (app/instance)', () => {
    expect(parseRtmpUrl('rtmp://h/app/inst/key')).toMatchObject({ app: 'app/inst', streamName: 'key', tcUrl: 'rtmp://h/app/inst' });
  });

  it('with a separate key, the whole path is the app (YouTube style)', () => {
    expect(parseRtmpUrl('rtmp://a.rtmp.youtube.com/live2', 'xxxx-yyyy-zzzz')).toEqual({
      secure: false,
      host: 'a.rtmp.youtube.com',
      port: 1935,
      app: 'live2',
      tcUrl: 'rtmp://a.rtmp.youtube.com/live2',
      streamName: 'xxxx-yyyy-zzzz',
    });
    expect(parseRtmpUrl('rtmp://h/app/inst/', ' key ')).toMatchObject({ app: 'app/inst', streamName: 'key' });
  });

  it('puts query strings on the stream name, byte for byte', () => {
    expect(parseRtmpUrl('rtmp://h/live/key?token=a%2Fb&x=1')).toMatchObject({ app: 'live', streamName: 'key?token=a%2Fb&x=1', tcUrl: 'rtmp://h/live' });
    expect(parseRtmpUrl('rtmp://h/live?token=t', 'key')).toMatchObject({ app: 'live', streamName: 'key?token=t' });
    expect(parseRtmpUrl('rtmp://h/live?token=t', 'key?a=b')).toMatchObject({ streamName: 'key?a=b&token=t' });
  });

  it('trims surrounding whitespace that pasting leaves', () => {
    expect(parseRtmpUrl('  rtmp://h/live/k \n')).toMatchObject({ host: 'h', streamName: 'k' });
  });

  it.each([
    ['relay.example.com/live/k', /must start with rtmp:\/\/ or rtmps:\/\//],
    ['rtmp:/h/live/k', /must start with/],
    ['http://h/live/k', /unsupported URL scheme 'http:\/\/'/],
    ['rtmpt://h/live/k', /unsupported URL scheme 'rtmpt:\/\/'/],
    ['rtmp://h', /no application name/],
    ['rtmp://h/', /no application name/],
    ['rtmp://h?x=1', /no application name/],
    ['rtmp://h/live', /no stream name/],
    ['rtmp://h/live/', /no stream name/],
    ['rtmp:///live/k', /no host/],
    ['rtmp://h:0/live/k', /invalid port '0'/],
    ['rtmp://h:65536/live/k', /invalid port '65536'/],
    ['rtmp://h:abc/live/k', /invalid port 'abc'/],
    ['rtmp://h:/live/k', /invalid port ''/],
    ['rtmp://::1/live/k', /IPv6 addresses in brackets/],
    ['rtmp://[::1/live/k', /unterminated IPv6/],
    ['rtmp://[nope]/live/k', /invalid IPv6/],
    ['rtmp://[::1]x/live/k', /unexpected characters/],
    ['rtmp://user:pw@h/live/k', /credentials/],
    ['rtmp://h/live/k ey', /whitespace/],
  ])('refuses %s', (url, message) => {
    expect(badUrl(url).message).toMatch(message);
  });

  it('refuses an empty separate key or a URL without app when the key is separate', () => {
    expect(badUrl('rtmp://h/live', '  ').message).toMatch(/stream key is empty/);
    expect(badUrl('rtmp://h/', 'key').message).toMatch(/no application name/);
  });

  it('never repeats the stream key in error messages', () => {
    expect(badUrl('rtmp://h:99999/live/supersecret').message).not.toContain('supersecret');
    expect(badUrl('ftp://h/live/supersecret').message).not.toContain('supersecret');
  });
});

describe('describeTarget', () => {
  it('shows scheme, host, port and app, never the key', () => {
    expect(describeTarget(parseRtmpUrl('rtmp://a.rtmp.youtube.com/live2', 'secret-key'))).toBe('rtmp://a.rtmp.youtube.com:1935/live2/<key redacted>');
    expect(describeTarget(parseRtmpUrl('rtmps://[::1]/app/inst/secret?token=t'))).toBe('rtmps://[::1]:443/app/inst/<key redacted>');
  });
});
