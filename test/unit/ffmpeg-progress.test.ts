import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { LineTail } from '../../src/ffmpeg/line-tail.js';
import { ProgressParser, type FfmpegProgress } from '../../src/ffmpeg/progress.js';
import { pieces } from '../helpers/pieces.js';

const execFileAsync = promisify(execFile);

const SOURCES = ['-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25', '-f', 'lavfi', '-i', 'sine', '-t', '2', '-c:v', 'libx264', '-c:a', 'aac'];

/** What a real ffmpeg writes to `-progress pipe:1` for 2 s of testsrc2 + sine encoded to the null muxer. */
let progressText = '';
/** The same, muxed to FLV (into /dev/null): now ffmpeg knows total_size and the bitrate. */
let progressTextFlv = '';
/** ffmpeg's own stderr at the default log level: banner-less info lines, then `\r`-separated stats lines. */
let stderrText = '';

beforeAll(async () => {
  const run = async (args: string[]) => execFileAsync('ffmpeg', args, { maxBuffer: 16 * 1024 * 1024, encoding: 'latin1' });
  const [nullOut, flvOut, stats] = await Promise.all([
    run(['-hide_banner', '-nostdin', '-loglevel', 'error', '-progress', 'pipe:1', '-stats_period', '0.5', ...SOURCES, '-f', 'null', '-']),
    run(['-hide_banner', '-nostdin', '-loglevel', 'error', '-progress', 'pipe:1', '-stats_period', '0.5', ...SOURCES, '-f', 'flv', '-y', '/dev/null']),
    run(['-hide_banner', '-nostdin', '-stats', ...SOURCES, '-f', 'null', '-']),
  ]);
  progressText = nullOut.stdout;
  progressTextFlv = flvOut.stdout;
  stderrText = stats.stderr;
});

/** Cuts text at the given sizes, cycling through them, and feeds every piece. */
function feed(text: string, sizes: number[]): FfmpegProgress[] {
  const parser = new ProgressParser();
  return pieces(text, sizes).flatMap((piece) => parser.push(piece));
}

/** The key=value blocks of raw progress text, read independently of the parser. */
function blocks(text: string): Array<Map<string, string>> {
  const out: Array<Map<string, string>> = [];
  let current = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    current.set(line.slice(0, eq), line.slice(eq + 1));
    if (line.startsWith('progress=')) {
      out.push(current);
      current = new Map();
    }
  }
  return out;
}

describe('ProgressParser on real ffmpeg -progress output', () => {
  it('reports one block per progress= line, frame and media time rising, the last one ending', () => {
    const reports = feed(progressText, [progressText.length]);
    const raw = blocks(progressText);
    // ffmpeg always writes a first report (once the output header is written) and a last one.
    expect(raw.length).toBeGreaterThanOrEqual(2);
    expect(reports).toHaveLength(raw.length);
    for (let i = 1; i < reports.length; i++) {
      expect(reports[i]!.frame).toBeGreaterThanOrEqual(reports[i - 1]!.frame);
      expect(reports[i]!.outTimeMs).toBeGreaterThanOrEqual(reports[i - 1]!.outTimeMs);
    }
    expect(reports.at(-1)!.frame).toBeGreaterThan(reports[0]!.frame);
    expect(reports.at(-1)!.outTimeMs).toBeGreaterThan(reports[0]!.outTimeMs);
    expect(reports.map((r) => r.end)).toEqual(raw.map((_, i) => i === raw.length - 1));
    // -t 2: two seconds of media, give or take the last audio frame (AAC frames are ~21 ms).
    expect(reports.at(-1)!.outTimeMs).toBeGreaterThanOrEqual(1950);
    expect(reports.at(-1)!.outTimeMs).toBeLessThanOrEqual(2100);
    expect(reports.at(-1)!.frame).toBe(50);
  });

  it('reads every field as ffmpeg wrote it, N/A as unknown', () => {
    for (const text of [progressText, progressTextFlv]) {
      const reports = feed(text, [text.length]);
      blocks(text).forEach((raw, i) => {
        const r = reports[i]!;
        expect(r.frame).toBe(Number(raw.get('frame')));
        expect(r.fps).toBe(Number(raw.get('fps')));
        expect(r.outTimeMs).toBe(Math.round(Number(raw.get('out_time_us')) / 1000));
        const bitrate = raw.get('bitrate')!.trim();
        if (bitrate === 'N/A') expect(r.bitrateBps).toBeUndefined();
        else expect(r.bitrateBps).toBe(Math.round(Number(bitrate.replace('kbits/s', '')) * 1000));
        const size = raw.get('total_size')!;
        expect(r.totalSize).toBe(size === 'N/A' ? 0 : Number(size));
        const speed = raw.get('speed')!.trim();
        if (speed === 'N/A') expect(r.speed).toBeUndefined();
        else expect(r.speed).toBe(Number(speed.replace(/x$/, '')));
      });
    }
    // The FLV run knows its size and bitrate by the end; the null muxer never does.
    const flvLast = feed(progressTextFlv, [progressTextFlv.length]).at(-1)!;
    expect(flvLast.totalSize).toBeGreaterThan(0);
    expect(flvLast.bitrateBps).toEqual(expect.any(Number));
    expect(flvLast.bitrateBps).toBeGreaterThan(0);
    expect(feed(progressText, [progressText.length]).at(-1)!.bitrateBps).toBeUndefined();
  });

  it('gives the same reports whatever the chunking: 1 byte, 7 bytes, any two pieces, random', () => {
    const whole = feed(progressText, [progressText.length]);
    expect(feed(progressText, [1])).toEqual(whole);
    expect(feed(progressText, [7])).toEqual(whole);
    expect(feed(progressTextFlv, [1])).toEqual(feed(progressTextFlv, [progressTextFlv.length]));
    // Every cut point once: inside keys, values, right before and after each newline.
    for (let cut = 0; cut <= progressText.length; cut++) {
      const parser = new ProgressParser();
      expect([...parser.push(progressText.slice(0, cut)), ...parser.push(progressText.slice(cut))]).toEqual(whole);
    }
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 30 }), (sizes) => {
        expect(feed(progressText, sizes)).toEqual(whole);
      }),
      { numRuns: 200 },
    );
  });
});

describe('ProgressParser on hand-written blocks', () => {
  const parse = (text: string) => new ProgressParser().push(text);

  it('prefers out_time_us over out_time_ms, in either order, and falls back when it is N/A', () => {
    expect(parse('out_time_ms=9000000\nout_time_us=1234567\nprogress=continue\n')[0]!.outTimeMs).toBe(1235);
    expect(parse('out_time_us=1234567\nout_time_ms=9000000\nprogress=continue\n')[0]!.outTimeMs).toBe(1235);
    // ffmpeg 6 writes N/A before the first timestamp; out_time_ms is microseconds too (an ffmpeg quirk).
    expect(parse('out_time_us=N/A\nout_time_ms=2000000\nprogress=continue\n')[0]!.outTimeMs).toBe(2000);
    expect(parse('out_time_ms=2000000\nprogress=continue\n')[0]!.outTimeMs).toBe(2000);
    // Older ffmpeg writes INT64_MIN+1 before the first timestamp.
    expect(parse('out_time_us=-9223372036854775807\nprogress=continue\n')[0]!.outTimeMs).toBe(0);
    expect(parse('out_time_us=N/A\nout_time_ms=N/A\nprogress=continue\n')[0]!.outTimeMs).toBe(0);
  });

  it('parses speed "1.5x" and bitrate "1234.5kbits/s", and leaves N/A unknown', () => {
    expect(parse('speed=1.5x\nbitrate=1234.5kbits/s\nprogress=continue\n')[0]).toMatchObject({ speed: 1.5, bitrateBps: 1234500 });
    expect(parse('speed=   1x\nbitrate=  65.3kbits/s\nprogress=continue\n')[0]).toMatchObject({ speed: 1, bitrateBps: 65300 });
    const na = parse('speed=N/A\nbitrate=N/A\ntotal_size=N/A\nfps=N/A\nprogress=continue\n')[0]!;
    expect(na).toMatchObject({ speed: undefined, bitrateBps: undefined, totalSize: 0, fps: 0 });
  });

  it('ignores garbage lines and starts every block afresh', () => {
    const reports = parse(
      [
        'frame=12', 'bitrate=100.0kbits/s', 'speed=2x', 'no equals sign here', '=value without a key', '', '   ',
        '\u0000\u00ff\u001b[2K', 'frame', 'fps=25.5', 'progress=continue',
        // The second block has no bitrate or speed: the first block's must not leak into it.
        'frame=13', 'unknown_key=whatever', 'progress=end', '',
      ].join('\n'),
    );
    expect(reports).toEqual([
      { frame: 12, fps: 25.5, bitrateBps: 100000, totalSize: 0, outTimeMs: 0, speed: 2, end: false },
      { frame: 13, fps: 0, bitrateBps: undefined, totalSize: 0, outTimeMs: 0, speed: undefined, end: true },
    ]);
  });

  it('accepts \\r\\n line ends', () => {
    expect(parse('frame=3\r\nspeed=0.5x\r\nprogress=end\r\n')).toEqual([
      { frame: 3, fps: 0, bitrateBps: undefined, totalSize: 0, outTimeMs: 0, speed: 0.5, end: true },
    ]);
  });

  it('starts over, without throwing, after a block of over 64 KiB without a newline', () => {
    const parser = new ProgressParser();
    expect(parser.push('frame=99\nspeed=3x\n')).toEqual([]);
    // In one piece and in many: neither throws nor reports.
    expect(parser.push('x'.repeat(70_000))).toEqual([]);
    for (let i = 0; i < 100; i++) expect(parser.push('y'.repeat(1000))).toEqual([]);
    // The fields read before the runaway block are gone; parsing goes on.
    expect(parser.push('\nprogress=continue\nframe=7\nprogress=continue\n')).toEqual([
      { frame: 0, fps: 0, bitrateBps: undefined, totalSize: 0, outTimeMs: 0, speed: undefined, end: false },
      { frame: 7, fps: 0, bitrateBps: undefined, totalSize: 0, outTimeMs: 0, speed: undefined, end: false },
    ]);
  });

  // A reader that fell behind gets the pipe's 64 KiB in one chunk: every whole block in it counts.
  it('keeps complete blocks that arrive together in one chunk of over 64 KiB', () => {
    const block = (n: number) => `frame=${n}\nfps=25.0\nbitrate= 200.0kbits/s\ntotal_size=${n * 1000}\nout_time_us=${n * 40_000}\nspeed=1x\nprogress=continue\n`;
    const text = Array.from({ length: 1000 }, (_, n) => block(n)).join('');
    expect(text.length).toBeGreaterThan(64 * 1024);
    const oneChunk = new ProgressParser().push(text);
    expect(oneChunk).toEqual(feed(text, [4096]));
    expect(oneChunk).toHaveLength(1000);
  });
});

describe('LineTail', () => {
  it('keeps the last N lines', () => {
    const tail = new LineTail(3);
    for (let i = 1; i <= 10; i++) tail.push(`line ${i}\n`);
    expect(tail.get()).toEqual(['line 8', 'line 9', 'line 10']);
    expect(tail.last()).toBe('line 10');
  });

  it('cuts long lines, finished or not, and stays bounded while one grows', () => {
    const tail = new LineTail(5, 10);
    tail.push(`${'a'.repeat(50)}\n`);
    expect(tail.get()).toEqual(['aaaaaaaaaa']);
    for (let i = 0; i < 1000; i++) tail.push('b'.repeat(100));
    expect(tail.get()).toEqual(['aaaaaaaaaa', 'bbbbbbbbbb']);
    tail.push('c\n');
    expect(tail.get()).toEqual(['aaaaaaaaaa', 'bbbbbbbbbb']);
  });

  it('splits on \\n, \\r\\n and a bare \\r, also when \\r and \\n arrive apart, and drops blank lines', () => {
    const tail = new LineTail();
    tail.push('one\r\ntwo\rthree\nfour\r');
    tail.push('\nfive\r\n\r\n   \n\t\nsix');
    expect(tail.get()).toEqual(['one', 'two', 'three', 'four', 'five', 'six']);
  });

  it("splits ffmpeg's real stderr, its \\r-separated stats lines included", () => {
    const tail = new LineTail(100);
    tail.push(stderrText);
    const lines = tail.get();
    expect(lines.every((l) => !/[\r\n]/.test(l) && l === l.trim() && l !== '')).toBe(true);
    // ffmpeg rewrites its stats line in place with \r: each rewrite is a line of its own.
    const stats = lines.filter((l) => l.startsWith('frame='));
    expect(stats.length).toBeGreaterThanOrEqual(2);
    expect(stats.at(-1)).toMatch(/^frame=\s*50 .*time=00:00:02/);
    expect(lines).toContainEqual(expect.stringMatching(/^Stream #0:0/));
  });

  it('gives the same lines whatever the chunking of real stderr', () => {
    const whole = new LineTail(100);
    whole.push(stderrText);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }), (sizes) => {
        const tail = new LineTail(100);
        for (let at = 0, i = 0; at < stderrText.length; i++) {
          const size = sizes[i % sizes.length]!;
          tail.push(stderrText.slice(at, at + size));
          at += size;
        }
        expect(tail.get()).toEqual(whole.get());
      }),
      { numRuns: 100 },
    );
  });

  it('cuts an indented long line the same whether it arrives whole or in pieces', () => {
    const whole = new LineTail(5, 10);
    whole.push('    abcdefghijklmnop\n');
    const pieces = new LineTail(5, 10);
    pieces.push('    abcdefghijklmnop');
    pieces.push('\n');
    expect(whole.get()).toEqual(['abcdefghij']);
    expect(pieces.get()).toEqual(whole.get());
  });

  it('last() is the last non-empty line, an unfinished one included', () => {
    const tail = new LineTail();
    expect(tail.last()).toBeUndefined();
    expect(tail.get()).toEqual([]);
    tail.push('   \n\n');
    expect(tail.last()).toBeUndefined();
    tail.push('done\n\n\r\n');
    expect(tail.last()).toBe('done');
    tail.push('frame=   10 fps=0.0');
    expect(tail.last()).toBe('frame=   10 fps=0.0');
    expect(tail.get()).toEqual(['done', 'frame=   10 fps=0.0']);
    tail.push(' speed=1x   \r');
    expect(tail.last()).toBe('frame=   10 fps=0.0 speed=1x');
    tail.push('   ');
    expect(tail.last()).toBe('frame=   10 fps=0.0 speed=1x');
    // ffmpeg's real stderr cut mid-run, in its first stats line and then in its last one.
    const firstStats = stderrText.indexOf('frame=');
    const real = new LineTail();
    real.push(stderrText.slice(0, firstStats + 20));
    expect(real.last()).toBe(stderrText.slice(firstStats, firstStats + 20).trim());
    real.push(stderrText.slice(firstStats + 20, stderrText.indexOf('\n', stderrText.lastIndexOf('frame='))));
    expect(real.last()).toMatch(/^frame=\s*50 .*speed=/);
  });
});
