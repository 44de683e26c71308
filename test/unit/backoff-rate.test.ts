import { describe, expect, it } from 'vitest';
import { Backoff } from '../../src/lib/backoff.js';
import { RateMeter } from '../../src/policy/rate-meter.js';

describe('Backoff', () => {
  it('doubles from the initial delay up to the cap, and resets', () => {
    const b = new Backoff({ initialDelayMs: 1000, maxDelayMs: 30_000 }, () => 0);
    expect([b.next(), b.next(), b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    b.reset();
    expect(b.next()).toBe(1000);
  });

  it('jitter takes up to 20% off each delay', () => {
    const b = new Backoff({ initialDelayMs: 1000, maxDelayMs: 30_000 }, () => 1);
    expect([b.next(), b.next()]).toEqual([800, 1600]);
  });

  it('does not overflow after very many attempts', () => {
    const b = new Backoff({ initialDelayMs: 1000, maxDelayMs: 30_000 }, () => 0.5);
    for (let i = 0; i < 10_000; i++) b.next();
    expect(b.next()).toBe(27_000);
  });
});

describe('RateMeter', () => {
  it('averages completed seconds over the window', () => {
    const m = new RateMeter(5);
    for (let s = 0; s < 5; s++) m.add(125_000, s * 1000 + 500); // 1 Mbit each second
    expect(m.bitsPerSecond(5_000)).toBe(1_000_000);
  });

  it('forgets seconds that left the window and ignores the current partial second', () => {
    const m = new RateMeter(5);
    m.add(1_000_000, 0);
    m.add(125_000, 9_500);
    expect(m.bitsPerSecond(9_900)).toBe(0);
    expect(m.bitsPerSecond(10_100)).toBe(200_000);
  });
});

describe('RateMeter start', () => {
  /** 1 Mbit/s as a stream sends it: 12 500 bytes every 100 ms, from `fromMs` to before `toMs`. */
  const steady = (m: RateMeter, fromMs: number, toMs: number, bytes = 12_500) => {
    for (let t = fromMs; t < toMs; t += 100) m.add(bytes, t);
  };

  it('a young meter averages over the time since its first sample; reset starts afresh', () => {
    const m = new RateMeter(5);
    steady(m, 100_200, 101_500); // from 0.2 s into second 100
    expect(m.bitsPerSecond(101_500)).toBe(1_000_000); // the 0.8 s of second 100
    steady(m, 101_500, 102_500);
    expect(m.bitsPerSecond(102_500)).toBe(1_000_000); // second 101 whole; the partial 100 left out
    m.reset();
    expect(m.bitsPerSecond(102_500)).toBe(0);
    steady(m, 102_600, 103_100, 25_000); // 2 Mbit/s
    expect(m.bitsPerSecond(103_100)).toBe(2_000_000);
  });

  it('reads a steady rate right from the first seconds of a connection that began mid-second', () => {
    const m = new RateMeter(5);
    let t = 7_500; // 1 Mbit/s from half a second into second 7
    for (const at of [8_050, 9_050, 10_050, 11_050, 12_050, 13_050]) {
      for (; t < at; t += 100) m.add(12_500, t);
      expect(m.bitsPerSecond(at)).toBe(1_000_000);
    }
  });
});

describe('RateMeter window', () => {
  it('keeps every complete second of the window while the current one fills', () => {
    const m = new RateMeter(2);
    m.add(250_000, 4_500); // 2 Mbit in second 4
    m.add(250_000, 5_500); // 2 Mbit in second 5
    m.add(250_000, 6_100); // second 6 is still filling
    expect(m.bitsPerSecond(6_200)).toBe(2_000_000);
  });
});
