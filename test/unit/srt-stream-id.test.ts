import { describe, expect, it } from 'vitest';
import { parseStreamId, redactStreamId } from '../../src/protocol/srt/stream-id.js';

describe('parseStreamId', () => {
  it('reads the access-control form', () => {
    expect(parseStreamId('#!::r=studio-a,m=publish,s=secret-key')).toEqual({ ok: true, request: { flowId: 'studio-a', mode: 'publish', key: 'secret-key' } });
    expect(parseStreamId('#!::m=request,r=studio-a,s=play')).toEqual({ ok: true, request: { flowId: 'studio-a', mode: 'request', key: 'play' } });
    expect(parseStreamId('#!::r=studio-a,u=alice,m=publish')).toEqual({ ok: true, request: { flowId: 'studio-a', mode: 'publish', key: undefined } });
  });

  it('defaults to request mode as the SRT access-control spec says', () => {
    expect(parseStreamId('#!::r=studio-a')).toMatchObject({ ok: true, request: { mode: 'request' } });
  });

  it('reads a plain flow id as a publish without key', () => {
    expect(parseStreamId('studio-a')).toEqual({ ok: true, request: { flowId: 'studio-a', mode: 'publish', key: undefined } });
  });

  it.each([
    ['', 'empty stream id'],
    ['x'.repeat(513), 'longer than 512'],
    ['Studio A', 'neither a flow id'],
    ['#!::r=studio-a,m=bidirectional', 'unsupported mode'],
    ['#!::m=publish', 'no valid r='],
    ['#!::r=Bad_Id', 'no valid r='],
    ['#!::r=a,r=b', 'repeats key r'],
    ['#!::r=a,garbage', 'malformed'],
  ])('refuses %j (%s)', (id, reason) => {
    const r = parseStreamId(id);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toMatch(reason);
  });
});

describe('redactStreamId', () => {
  it('hides keys, and plain stream ids (which may be keys) altogether', () => {
    expect(redactStreamId('#!::r=cam,m=publish,s=secret-key')).toBe('#!::r=cam,m=publish,s=<redacted>');
    expect(redactStreamId('#!::s=secret,r=cam')).toBe('#!::s=<redacted>,r=cam');
    expect(redactStreamId('studio-a')).toBe('<redacted>');
    expect(redactStreamId('')).toBe('');
  });
});
