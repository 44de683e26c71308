import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeAmf0, encodeAmf0 } from '../../src/protocol/amf/amf0.js';
import type { ContainerInput } from '../../src/protocol/container.js';
import { FlvFileMuxer } from '../../src/protocol/flv/file-muxer.js';
import { isVideoFrame, parseFlv, toContainerInput, type FlvFileTag } from '../helpers/flv-file.js';
import { makeTestFlv, runTool } from '../helpers/media-sync.js';

interface Probe {
  streams: { codec_type: string; codec_name: string; width?: number; height?: number; nb_read_frames?: string }[];
  format: { duration?: string; format_name: string };
}

function probe(file: string): Probe {
  const r = runTool('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-count_frames', '-of', 'json', file]);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Probe;
}

function videoPackets(file: string): { pts: number; dts: number }[] {
  const r = runTool('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'packet=pts,dts', '-of', 'json', file]);
  expect(r.status, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { packets: { pts: number; dts: number }[] }).packets;
}

const message = (kind: ContainerInput['kind'], timestamp: number, payload: Buffer): ContainerInput => ({ kind, timestamp, payload, isKeyframe: false, isSequenceHeader: false });

let dir = '';
let tags: FlvFileTag[] = [];
let inputDuration = 0;
let inputProbe: Probe;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'flowrelay-flvfile-'));
  const flv = join(dir, 'in.flv');
  makeTestFlv(flv);
  tags = parseFlv(readFileSync(flv)).tags;
  inputProbe = probe(flv);
  inputDuration = Number(inputProbe.format.duration);
});

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe('FlvFileMuxer', () => {
  it('writes an FLV file ffprobe reads with every frame, the codecs, size, duration and timing intact', () => {
    const muxer = new FlvFileMuxer();
    const outputs = tags.map((t) => muxer.push(toContainerInput(t)));
    // One buffer per tag, the file header riding with the first.
    expect(outputs.every((o) => o.length === 1)).toBe(true);
    expect(muxer.flush()).toEqual([]);
    expect(muxer.counters.skipped).toBe(0);
    const bytes = Buffer.concat(outputs.flat());
    const file = join(dir, 'out.flv');
    writeFileSync(file, bytes);

    const p = probe(file);
    expect(p.format.format_name).toBe('flv');
    expect(p.streams.map((s) => [s.codec_type, s.codec_name])).toEqual([['video', 'h264'], ['audio', 'aac']]);
    expect(p.streams[0]).toMatchObject({ width: 320, height: 240 });
    expect(p.streams.map((s) => s.nb_read_frames)).toEqual(inputProbe.streams.map((s) => s.nb_read_frames));
    expect(Number(p.streams[0]!.nb_read_frames)).toBe(tags.filter(isVideoFrame).length);
    // The input's duration comes from its onMetaData; the recording drops that key, so
    // ffprobe measures the tags instead (which adds the last frame's length).
    expect(Math.abs(Number(p.format.duration) - inputDuration)).toBeLessThan(0.2);
    const video = videoPackets(file);
    for (let i = 0; i < video.length; i++) {
      expect(video[i]!.pts).toBeGreaterThanOrEqual(video[i]!.dts);
      if (i > 0) expect(video[i]!.dts).toBeGreaterThan(video[i - 1]!.dts);
    }
    expect(runTool('ffmpeg', ['-hide_banner', '-nostdin', '-v', 'error', '-i', file, '-f', 'null', '-'])).toMatchObject({ status: 0, stderr: '' });
  });

  it('lays out the header (E.2), PreviousTagSize0 and each tag (E.3) byte for byte', () => {
    const muxer = new FlvFileMuxer();
    const bytes = Buffer.concat(tags.flatMap((t) => muxer.push(toContainerInput(t))));
    expect(bytes.subarray(0, 13).toString('hex')).toBe('464c5601050000000900000000');
    const parsed = parseFlv(bytes);
    expect(parsed.hasAudio && parsed.hasVideo).toBe(true);
    // Every tag as it came, except onMetaData without the source file's duration and size.
    expect(parsed.tags.filter((t) => t.type !== 18)).toEqual(tags.filter((t) => t.type !== 18));
    expect(decodeAmf0(parsed.tags[0]!.body)[1]).not.toHaveProperty('duration');
    let at = 13;
    for (const t of parsed.tags) {
      expect(bytes.readUIntBE(at + 8, 3)).toBe(0); // StreamID
      const end = at + 11 + t.body.length;
      expect(bytes.readUInt32BE(end)).toBe(11 + t.body.length); // PreviousTagSize
      at = end + 4;
    }
    expect(at).toBe(bytes.length);
  });

  it('writes data messages as script tags, as they are', () => {
    const body = Buffer.from('020006676f6f646279', 'hex');
    const [out] = new FlvFileMuxer().push({ kind: 'data', timestamp: 5, payload: body, isKeyframe: false, isSequenceHeader: true });
    const tag = out!.subarray(13);
    // TagType 18, DataSize 9, Timestamp 5, TimestampExtended 0, StreamID 0.
    expect(tag.subarray(0, 11).toString('hex')).toBe(['12', '000009', '000005', '00', '000000'].join(''));
    expect(tag.subarray(11, 11 + body.length)).toEqual(body);
    expect(tag.readUInt32BE(11 + body.length)).toBe(20);
  });

  it("drops a source file's duration and filesize from onMetaData, keeping everything else", () => {
    const meta = encodeAmf0(['onMetaData', { duration: 6.08, filesize: 123456, width: 320, height: 240, encoder: 'Lavf' }]);
    const [out] = new FlvFileMuxer().push({ kind: 'data', timestamp: 0, payload: meta, isKeyframe: false, isSequenceHeader: true });
    const [tag] = parseFlv(out!).tags;
    expect(decodeAmf0(tag!.body)).toEqual(['onMetaData', { width: 320, height: 240, encoder: 'Lavf' }]);
    // Other data messages, and metadata without those keys, pass byte for byte.
    const cue = encodeAmf0(['onCuePoint', { duration: 1 }]);
    expect(parseFlv(new FlvFileMuxer().push({ kind: 'data', timestamp: 0, payload: cue, isKeyframe: false, isSequenceHeader: false })[0]!).tags[0]!.body).toEqual(cue);
  });

  it('carries timestamps past 24 bits in TimestampExtended, clamps negative ones and wraps at 32 bits', () => {
    const muxer = new FlvFileMuxer();
    const body = Buffer.from('af01aa', 'hex');
    const bytes = Buffer.concat([
      ...muxer.push(message('audio', 0x12345678, body)),
      ...muxer.push(message('audio', -3, body)),
      ...muxer.push(message('audio', 2 ** 32 + 7, body)),
    ]);
    expect(bytes.subarray(13 + 4, 13 + 8).toString('hex')).toBe('34567812');
    expect(parseFlv(bytes).tags.map((t) => t.timestamp)).toEqual([0x12345678, 0, 7]);
  });

  it('skips and counts empty payloads; the header waits for the first tag written', () => {
    const muxer = new FlvFileMuxer();
    expect(muxer.push(message('video', 0, Buffer.alloc(0)))).toEqual([]);
    expect(muxer.counters.skipped).toBe(1);
    const [first] = muxer.push(message('video', 0, Buffer.from('1701000000', 'hex')));
    expect(first!.subarray(0, 3).toString('latin1')).toBe('FLV');
    const [second] = muxer.push(message('video', 40, Buffer.from('2701000000', 'hex')));
    expect(second![0]).toBe(9);
    expect(second!.length).toBe(11 + 5 + 4);
  });
});
