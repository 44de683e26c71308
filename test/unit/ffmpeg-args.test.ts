import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBad, parseOk, summary } from '../helpers/config-text.js';
import { isFileSource, type PullInputConfig } from '../../src/config/schema-pull.js';
import { pullArgs, redactSourceUrl, secretRedactor } from '../../src/ffmpeg/args.js';
import { FlvStreamReader, type FlvStreamTag } from '../../src/protocol/flv/stream-reader.js';
import { probeStreams, videoFrames } from '../helpers/ffmpeg.js';
import { isVideoFrame } from '../helpers/flv-file.js';

const execFileAsync = promisify(execFile);


/** A flow whose one input (on line 4) is the given YAML flow mapping. */
const oneFlow = (input: string) => `flows:
  - id: demo
    inputs:
      - ${input}
`;

/** The one input of the one flow, as the loader gives it to the daemon. */
function pullInput(input: string): PullInputConfig {
  const parsed = parseOk(oneFlow(input)).flows[0]?.inputs[0];
  if (parsed?.type !== 'pull') throw new Error(`expected a pull input, got ${JSON.stringify(parsed)}`);
  return parsed;
}

const SHELLY = '/tmp/a b;rm -rf x.mp4';

describe('pull inputs in the config', () => {
  it('parse with their defaults', () => {
    expect(pullInput('{ name: cam, type: pull, url: "https://cdn.example.com/live/index.m3u8" }')).toEqual({
      name: 'cam',
      type: 'pull',
      url: 'https://cdn.example.com/live/index.m3u8',
      loop: false,
      idleTimeoutMs: 15_000,
      reconnect: { initialDelayMs: 1_000, maxDelayMs: 30_000, resetAfterMs: 60_000, failAfter: 5, giveUp: false },
    });
  });

  it('keep what is set, a path with spaces and shell characters included', () => {
    expect(pullInput(`{ name: clip, type: pull, url: "${SHELLY}", realtime: false, loop: true, idleTimeoutMs: 5000, reconnect: { failAfter: 2 } }`)).toMatchObject({
      url: SHELLY, realtime: false, loop: true, idleTimeoutMs: 5000, reconnect: { failAfter: 2, initialDelayMs: 1_000 },
    });
  });

  it('refuse a URL that ffmpeg would read as an option, at the input url', () => {
    for (const url of ['-i', '-f lavfi', '-']) {
      expect(summary(parseBad(oneFlow(`{ name: cam, type: pull, url: "${url}" }`)))).toEqual([
        [4, 'flows[0].inputs[0].url', 'must not start with "-"'],
      ]);
    }
  });

  it('refuse a URL with a control character, at the input url', () => {
    // YAML double-quoted escapes: a newline, a tab, BEL, DEL.
    for (const escaped of ['\\n', '\\t', '\\a', '\\x7f']) {
      expect(summary(parseBad(oneFlow(`{ name: cam, type: pull, url: "rtmp://host/app${escaped}key" }`))), escaped).toEqual([
        [4, 'flows[0].inputs[0].url', 'must not contain control characters'],
      ]);
    }
  });

  it('refuse an empty URL and a missing one', () => {
    expect(summary(parseBad(oneFlow('{ name: cam, type: pull, url: "" }')))).toEqual([[4, 'flows[0].inputs[0].url', 'must not be empty']]);
    expect(parseBad(oneFlow('{ name: cam, type: pull }')).map((i) => [i.line, i.path])).toEqual([[4, 'flows[0].inputs[0].url']]);
  });

  it('does not take a url on a flow input (a pull input does)', () => {
    expect(summary(parseBad(oneFlow('{ name: main, type: flow, flow: x, url: "x" }')))).toEqual(
      expect.arrayContaining([[4, 'flows[0].inputs[0].url', 'unknown key "url"']]),
    );
  });
});

describe('isFileSource', () => {
  it.each([
    ['/var/media/clip.mp4', true],
    ['relative/clip.mp4', true],
    [SHELLY, true],
    ['file:///var/media/clip.mp4', true],
    ['FILE:/var/media/clip.mp4', true],
    ['http://example.com/a.flv', false],
    ['https://example.com/live/index.m3u8', false],
    ['rtmp://example.com/live/key', false],
    ['srt://example.com:9000?streamid=x', false],
    ['rtsp://camera.local/stream1', false],
  ])('%s -> %s', (url, file) => {
    expect(isFileSource(url)).toBe(file);
  });
});

describe('pullArgs', () => {
  const args = (url: string, realtime?: boolean, loop = false) => pullArgs({ url, realtime, loop });

  it('reads files at their own pace by default, network sources as they come', () => {
    for (const url of ['/var/media/clip.mp4', 'file:///var/media/clip.mp4', SHELLY]) expect(args(url), url).toContain('-re');
    for (const url of ['http://example.com/a.flv', 'https://example.com/live/index.m3u8', 'rtmp://example.com/live/key', 'srt://example.com:9000']) {
      expect(args(url), url).not.toContain('-re');
    }
  });

  it('lets realtime override the default both ways', () => {
    expect(args('/var/media/clip.mp4', false)).not.toContain('-re');
    expect(args('https://example.com/live/index.m3u8', true)).toContain('-re');
    expect(args('https://example.com/live/index.m3u8', false)).not.toContain('-re');
    expect(args('/var/media/clip.mp4', true)).toContain('-re');
  });

  it('puts -re and -stream_loop -1 before -i (input options), only when asked', () => {
    const looped = args('/var/media/clip.mp4', undefined, true);
    const i = looped.indexOf('-i');
    expect(looped.indexOf('-re')).toBeGreaterThanOrEqual(0);
    expect(looped.indexOf('-re')).toBeLessThan(i);
    const loop = looped.indexOf('-stream_loop');
    expect(loop).toBeGreaterThanOrEqual(0);
    expect(loop).toBeLessThan(i);
    expect(looped[loop + 1]).toBe('-1');
    expect(args('/var/media/clip.mp4')).not.toContain('-stream_loop');
  });

  it('passes the URL as one argument right after -i, spaces and shell characters untouched', () => {
    for (const url of [SHELLY, 'https://example.com/a b.m3u8?x=1&y=$(id)', "/tmp/it's `here`|*.mp4"]) {
      const a = args(url);
      expect(a.filter((x) => x === '-i')).toHaveLength(1);
      expect(a[a.indexOf('-i') + 1]).toBe(url);
      expect(a.filter((x) => x === url)).toHaveLength(1);
    }
  });

  it('ends with FLV on stdout, and is the same for the same spec', () => {
    const a = args('rtmp://example.com/live/key');
    expect(a.at(-1)).toBe('pipe:1');
    const f = a.lastIndexOf('-f');
    expect(a[f + 1]).toBe('flv');
    expect(a.indexOf('-i')).toBeLessThan(f);
    expect(a.slice(a.indexOf('-i') + 2)).toContain('copy');
    expect(args('rtmp://example.com/live/key')).toEqual(a);
  });
});

describe('redactSourceUrl', () => {
  it.each([
    ['https://user:secret@cdn.example.com/live/index.m3u8?token=abc#frag', 'https://cdn.example.com/live/index.m3u8'],
    ['http://cdn.example.com:8080/a.flv?sig=xyz', 'http://cdn.example.com:8080/a.flv'],
    ['rtmp://user:pw@example.com:1936/live/stream', 'rtmp://example.com:1936/live/<key redacted>'],
    ['srt://example.com:9000?streamid=#!::r=live,s=secret&passphrase=hunter22', 'srt://example.com:9000'],
    ['rtsp://admin:admin@[fe80::1]:554/stream1?channel=1', 'rtsp://[fe80::1]:554/stream1'],
    ['https://cdn.example.com/live/index.m3u8', 'https://cdn.example.com/live/index.m3u8'],
  ])('%s -> %s', (url, redacted) => {
    expect(redactSourceUrl(url)).toBe(redacted);
  });

  it('drops credentials and query even when the URL does not parse', () => {
    const out = redactSourceUrl('http://user:pw@exa mple.com/a?token=abc');
    expect(out).not.toContain('pw');
    expect(out).not.toContain('token');
  });

  it('keeps file paths as they are', () => {
    for (const path of ['/var/media/clip.mp4', SHELLY, 'relative/clip.mp4', 'file:///var/media/clip.mp4']) expect(redactSourceUrl(path)).toBe(path);
  });
});

describe('pullArgs run by the real ffmpeg', () => {
  let dir = '';
  let clip = '';
  let clipFrames = 0;

  beforeAll(async () => {
    // A name with a space and shell characters: it must reach ffmpeg as one argument.
    dir = await mkdtemp(join(tmpdir(), 'flowrelay-pull-args-'));
    clip = join(dir, 'a b;rm -rf x.mp4');
    await execFileAsync('ffmpeg', [
      '-hide_banner', '-nostdin', '-loglevel', 'error',
      '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25', '-f', 'lavfi', '-i', 'sine',
      '-t', '1', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-y', clip,
    ]);
    clipFrames = videoFrames(await probeStreams(clip));
    expect(clipFrames).toBeGreaterThanOrEqual(25);
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /**
   * Runs ffmpeg with the args and reads its stdout as FLV until it exits or `enough` says
   * so (then it is killed). Resolves with the tags, the exit code and stderr.
   */
  function run(args: string[], enough: (tags: FlvStreamTag[]) => boolean = () => false) {
    return new Promise<{ tags: FlvStreamTag[]; code: number | null; stderr: string }>((resolve, reject) => {
      const proc = spawn('ffmpeg', ['-hide_banner', '-nostdin', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      const reader = new FlvStreamReader();
      const tags: FlvStreamTag[] = [];
      let stderr = '';
      let failure: unknown;
      proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      proc.stdout.on('data', (chunk: Buffer) => {
        if (failure !== undefined || proc.killed) return;
        try {
          tags.push(...reader.push(chunk));
        } catch (err) {
          failure = err;
        }
        if (failure !== undefined || enough(tags)) proc.kill('SIGKILL');
      });
      proc.once('error', reject);
      proc.once('close', (code) => (failure !== undefined ? reject(failure as Error) : resolve({ tags, code, stderr })));
    });
  }

  const isAvcSequenceHeader = (t: FlvStreamTag) => t.type === 9 && (t.body[0]! & 0x0f) === 7 && t.body[1] === 0;
  const isAacSequenceHeader = (t: FlvStreamTag) => t.type === 8 && t.body[0]! >> 4 === 10 && t.body[1] === 0;

  it('turns a local file into FLV tags: video led by its AVC sequence header, and audio', async () => {
    const { tags, code, stderr } = await run(pullArgs({ url: clip, realtime: false, loop: false }));
    expect(code, stderr).toBe(0);
    const video = tags.filter((t) => t.type === 9);
    const audio = tags.filter((t) => t.type === 8);
    expect(video.length).toBeGreaterThanOrEqual(20);
    expect(audio.length).toBeGreaterThanOrEqual(20);
    expect(isAvcSequenceHeader(video[0]!)).toBe(true);
    expect(video.slice(1).some(isAvcSequenceHeader)).toBe(false);
    expect(isAacSequenceHeader(audio[0]!)).toBe(true);
    // -c copy: every frame of the clip, once, in order (plus the end-of-sequence tag the FLV muxer ends with).
    expect(video.filter(isVideoFrame)).toHaveLength(clipFrames);
    expect(video.map((t) => t.timestamp)).toEqual([...video.map((t) => t.timestamp)].sort((a, b) => a - b));
  });

  it('reads a file: URL the same way', async () => {
    // ffmpeg's file protocol takes the rest of the URL as a path, not percent-decoded.
    const { tags, code, stderr } = await run(pullArgs({ url: `file://${clip}`, realtime: false, loop: false }));
    expect(code, stderr).toBe(0);
    expect(tags.filter(isVideoFrame)).toHaveLength(clipFrames);
    expect(isAvcSequenceHeader(tags.find((t) => t.type === 9)!)).toBe(true);
  });

  it('with loop, plays the file again: media time goes past its 1 s', async () => {
    const { tags } = await run(pullArgs({ url: clip, realtime: false, loop: true }), (t) => t.some((x) => x.type === 9 && x.timestamp >= 2500));
    const video = tags.filter((t) => t.type === 9 && !isAvcSequenceHeader(t));
    expect(video.at(-1)!.timestamp).toBeGreaterThanOrEqual(2500);
  });
});

describe('secretRedactor', () => {
  it("hides keys, tokens and passwords where ffmpeg quotes its inputs and outputs", () => {
    const redact = secretRedactor(['rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl-mnop', 'https://user:hunter2pw@cdn.example.com/live/index.m3u8?token=SECRET123', '/srv/media/a.mp4']);
    expect(redact('rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl-mnop: Connection refused')).toBe('rtmp://a.rtmp.youtube.com/live2/<key redacted>: Connection refused');
    expect(redact('Server returned 403 for https://user:hunter2pw@cdn.example.com/live/index.m3u8?token=SECRET123')).toBe('Server returned 403 for https://cdn.example.com/live/index.m3u8');
    // Parts quoted on their own are hidden too.
    expect(redact('publish abcd-efgh-ijkl-mnop refused; token=SECRET123; password hunter2pw')).not.toMatch(/abcd-efgh|SECRET123|hunter2pw/);
    // Files are not secrets.
    expect(redact('/srv/media/a.mp4: No such file or directory')).toBe('/srv/media/a.mp4: No such file or directory');
  });
});
