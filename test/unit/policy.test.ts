import { describe, expect, it } from 'vitest';
import { BitrateCap } from '../../src/policy/bitrate-cap.js';
import { admitByLists, CidrList, normalizeAddress, parseCidr } from '../../src/policy/cidr.js';
import { keysMatch } from '../../src/policy/keys.js';
import { ConnectionAdmission } from '../../src/policy/connection-admission.js';
import { RateLimitedLog } from '../../src/telemetry/rate-limited-log.js';
import { pino } from 'pino';

describe('CidrList', () => {
  it('matches IPv4, IPv6 and IPv4-mapped IPv6 addresses', () => {
    const list = CidrList.parse(['127.0.0.1/32', '10.0.0.0/8', '::1/128', '2001:db8::/32']);
    expect(list.matches('127.0.0.1')).toBe(true);
    expect(list.matches('127.0.0.2')).toBe(false);
    expect(list.matches('10.200.3.4')).toBe(true);
    expect(list.matches('::ffff:10.1.2.3')).toBe(true);
    expect(list.matches('::ffff:127.0.0.2')).toBe(false);
    expect(list.matches('::1')).toBe(true);
    expect(list.matches('::2')).toBe(false);
    expect(list.matches('2001:db8:1::5')).toBe(true);
    expect(list.matches('2001:db9::1')).toBe(false);
    expect(list.matches('not-an-address')).toBe(false);
  });

  it('takes single addresses as /32 and /128, and rejects bad entries with a clear message', () => {
    expect(parseCidr('192.0.2.7')).toEqual({ address: '192.0.2.7', prefix: 32, family: 'ipv4' });
    expect(parseCidr('::1')).toEqual({ address: '::1', prefix: 128, family: 'ipv6' });
    expect(() => CidrList.parse(['10.0.0.0/33'])).toThrow(/prefix length outside 0..32/);
    expect(() => CidrList.parse(['10.0.0.0/8/99'])).toThrow(/one "\/" at most/);
    expect(() => CidrList.parse(['example.com'])).toThrow(/not an IPv4 or IPv6/);
    expect(() => CidrList.parse(['10.0.0.0/x'])).toThrow(/prefix/);
    expect(normalizeAddress('::FFFF:1.2.3.4')).toBe('1.2.3.4');
  });

  it('deny wins over allow; empty lists admit everyone', () => {
    const allow = CidrList.parse(['10.0.0.0/8']);
    const deny = CidrList.parse(['10.0.0.66']);
    expect(admitByLists('10.0.0.1', allow, deny)).toBe(true);
    expect(admitByLists('10.0.0.66', allow, deny)).toBe(false);
    expect(admitByLists('192.0.2.1', allow, deny)).toBe(false);
    expect(admitByLists('192.0.2.1', CidrList.parse([]), undefined)).toBe(true);
  });
});

describe('BitrateCap', () => {
  const cap = () => new BitrateCap({ maxBitrate: 2_000_000, tolerance: 0.1, graceMs: 5_000, windowSeconds: 2 });
  /** Feeds `bps` for `seconds` in 40 ms steps from t0; returns the first verdict that exceeded. */
  function feed(c: BitrateCap, bps: number, seconds: number, t0 = 0) {
    for (let t = t0; t < t0 + seconds * 1000; t += 40) {
      const v = c.add((bps / 8) * 0.04, t);
      if (v.exceeded) return { at: t, ...v };
    }
    return undefined;
  }

  it('a stream under the cap (with keyframe bursts) is never touched', () => {
    const c = cap();
    for (let t = 0; t < 60_000; t += 40) {
      const burst = t % 2000 === 0 ? 60_000 : 0; // a keyframe every 2 s
      expect(c.add(1_000_000 / 8 * 0.04 + burst, t).exceeded).toBe(false);
    }
  });

  it('a stream far above the cap is exceeded after the grace period plus the window', () => {
    const hit = feed(cap(), 6_000_000, 20);
    expect(hit).toBeDefined();
    expect(hit!.at).toBeGreaterThanOrEqual(5_000);
    expect(hit!.at).toBeLessThanOrEqual(5_000 + 3_000);
    expect(hit!.measuredBps).toBeGreaterThan(5_500_000);
    expect(hit!.allowedBps).toBe(2_200_000);
  });

  it('within the tolerance is fine; a short spike above is forgiven', () => {
    expect(feed(cap(), 2_150_000, 30)).toBeUndefined();
    const c = cap();
    expect(feed(c, 8_000_000, 3)).toBeUndefined();
    expect(feed(c, 1_000_000, 20, 3_000)).toBeUndefined();
  });
});

describe('keysMatch', () => {
  it('compares keys of any length without throwing', () => {
    expect(keysMatch('abc', 'abc')).toBe(true);
    expect(keysMatch('abc', 'abcd')).toBe(false);
    expect(keysMatch('', 'x')).toBe(false);
  });
});

describe('ConnectionAdmission', () => {
  const lists = { allow: CidrList.parse([]), deny: CidrList.parse(['192.0.2.66']) };

  it('caps connections in total and per address, and frees a slot on release', () => {
    const a = new ConnectionAdmission({ maxConnections: 3, maxConnectionsPerAddress: 2, ...lists });
    const one = a.admit('10.0.0.1');
    const two = a.admit('::ffff:10.0.0.1');
    expect(one.ok && two.ok).toBe(true);
    expect(a.admit('10.0.0.1')).toEqual({ ok: false, reason: 'too_many_from_address' });
    expect(a.admit('10.0.0.2').ok).toBe(true);
    expect(a.admit('10.0.0.3')).toEqual({ ok: false, reason: 'too_many_connections' });
    if (one.ok) {
      one.release();
      one.release(); // idempotent
    }
    expect(a.open).toBe(2);
    expect(a.admit('10.0.0.1').ok).toBe(true);
    expect(a.refusals).toEqual({ too_many_from_address: 1, too_many_connections: 1 });
  });

  it('refuses denied addresses before counting', () => {
    const a = new ConnectionAdmission({ maxConnections: 10, maxConnectionsPerAddress: 10, ...lists });
    expect(a.admit('192.0.2.66')).toEqual({ ok: false, reason: 'address_denied' });
    expect(a.admit(undefined)).toMatchObject({ ok: true });
    expect(a.open).toBe(1);
  });

  it('check says what admit would refuse, without counting or holding a slot', () => {
    const a = new ConnectionAdmission({ maxConnections: 5, maxConnectionsPerAddress: 1, ...lists });
    expect(a.check('10.0.0.1')).toBeUndefined();
    expect(a.check('10.0.0.1')).toBeUndefined();
    expect(a.open).toBe(0);
    expect(a.admit('10.0.0.1').ok).toBe(true);
    expect(a.check('::ffff:10.0.0.1')).toBe('too_many_from_address');
    expect(a.check('192.0.2.66')).toBe('address_denied');
    expect(a.refusals).toEqual({});
    a.countRefusal('too_many_from_address');
    expect(a.refusals).toEqual({ too_many_from_address: 1 });
    expect(a.report('srt', [{ protocol: 'srt', host: '::', port: 9000 }])).toEqual({
      protocol: 'srt',
      addresses: [{ protocol: 'srt', host: '::', port: 9000 }],
      connections: 1,
      maxConnections: 5,
      maxConnectionsPerAddress: 1,
      refusals: { too_many_from_address: 1 },
    });
  });
});

describe('RateLimitedLog', () => {
  it('logs a key at most once per interval and reports what it held back', () => {
    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
    let now = 0;
    const log = new RateLimitedLog(logger, 10_000, () => now);
    for (let i = 0; i < 50; i++, now += 100) log.warn('refused', { n: i }, 'refused');
    now = 20_000;
    log.warn('refused', { n: 99 }, 'refused');
    log.warn('other', {}, 'other');
    expect(lines.map((l) => [l.msg, l.n, l.suppressed])).toEqual([
      ['refused', 0, undefined],
      ['refused', 99, 49],
      ['other', undefined, undefined],
    ]);
  });
});
