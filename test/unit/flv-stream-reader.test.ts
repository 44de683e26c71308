import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FlvStreamReader, type FlvStreamTag } from '../../src/protocol/flv/stream-reader.js';
import { pieces } from '../helpers/pieces.js';
import { flvTagBytes, parseFlv, type FlvFileTag } from '../helpers/flv-file.js';
import { protocolError } from '../helpers/protocol-error.js';

const execFileAsync = promisify(execFile);

let dir = '';
/** A real FLV: 2 s of testsrc2 + sine as H.264 + AAC, as ffmpeg writes it. */
let flv = Buffer.alloc(0);
/** The same file read by the strict whole-file parser: what the stream reader must reproduce. */
let expected: FlvFileTag[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flowrelay-flv-reader-'));
  const file = join(dir, 'av.flv');
  await execFileAsync('ffmpeg', [
    '-hide_banner', '-nostdin', '-loglevel', 'error',
    '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25', '-f', 'lavfi', '-i', 'sine',
    '-t', '2', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-g', '25', '-c:a', 'aac', '-f', 'flv', '-y', file,
  ]);
  flv = await readFile(file);
  expected = parseFlv(flv).tags;
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Comparable form: body bytes as hex, so a mismatch names the tag. */
const plain = (tags: Array<FlvStreamTag | FlvFileTag>) => tags.map((t) => ({ type: t.type, timestamp: t.timestamp, body: t.body.toString('hex') }));

/** Feeds `bytes` cut at the given sizes (cycling through them). */
function readAll(bytes: Buffer, sizes: number[], reader = new FlvStreamReader()): FlvStreamTag[] {
  return pieces(bytes, sizes).flatMap((piece) => reader.push(piece));
}

const FLV_HEADER = Buffer.from('464c5601050000000900000000', 'hex'); // "FLV", v1, audio+video, DataOffset 9, PreviousTagSize0

/** One tag as it sits in a file: 11-byte header, body, PreviousTagSize. */
const tagBytes = (type: number, timestamp: number, body: Buffer): Buffer => flvTagBytes({ type, timestamp, body });

describe('FlvStreamReader on a real ffmpeg FLV', () => {
  it('the file holds script data, video and audio', () => {
    const types = new Set(expected.map((t) => t.type));
    expect(types).toEqual(new Set([8, 9, 18]));
    expect(expected.length).toBeGreaterThan(100);
  });

  it.each([
    ['whole', [Number.MAX_SAFE_INTEGER]],
    ['1-byte chunks', [1]],
    ['7-byte chunks', [7]],
    ['the header alone, then 4 KiB chunks', [13, 4096]],
    ['chunks that end inside tag headers', [3, 11, 5, 2, 17]],
  ])('gives exactly the tags of the file in %s', (_what, sizes) => {
    expect(plain(readAll(flv, sizes))).toEqual(plain(expected));
  });

  it('gives exactly the tags of the file in random chunks', () => {
    const want = plain(expected);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 40 }), (sizes) => {
        expect(plain(readAll(flv, sizes))).toEqual(want);
      }),
      { numRuns: 60 },
    );
  });

  it('holds back a truncated last tag until the rest arrives', () => {
    const last = expected.at(-1)!;
    for (const missing of [1, 4, 5, last.body.length + 4, last.body.length + 4 + 10]) {
      const reader = new FlvStreamReader();
      const cut = flv.length - missing;
      expect(plain(reader.push(flv.subarray(0, cut)))).toEqual(plain(expected.slice(0, -1)));
      expect(reader.push(Buffer.alloc(0))).toEqual([]);
      expect(plain(reader.push(flv.subarray(cut)))).toEqual(plain([last]));
    }
  });

  it('refuses a tag over the cap, and takes one exactly at it', () => {
    const largest = Math.max(...expected.map((t) => t.body.length));
    expect(plain(readAll(flv, [1000], new FlvStreamReader(largest)))).toEqual(plain(expected));
    const err = protocolError(() => readAll(flv, [1000], new FlvStreamReader(largest - 1)));
    expect(err.code).toBe('FLV_MALFORMED');
  });

  it('returns bodies that are copies, not views of the chunk they came in', () => {
    const chunk = Buffer.from(flv);
    const tags = new FlvStreamReader().push(chunk);
    chunk.fill(0);
    expect(plain(tags)).toEqual(plain(expected));
  });
});

describe('FlvStreamReader on hand-made streams', () => {
  it('refuses a stream that does not start with an FLV header', () => {
    for (const start of ['GET / HTTP/1.1\r\n\r\n', 'flv\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00', '\x00'.repeat(13)]) {
      expect(protocolError(() => new FlvStreamReader().push(Buffer.from(start, 'latin1'))).code).toBe('FLV_MALFORMED');
    }
    // Byte by byte, it is refused as soon as the fixed header (9 bytes) is in.
    const reader = new FlvStreamReader();
    const mp4 = Buffer.from('000000206674797069736f6d0000020069736f6d', 'hex');
    for (let i = 0; i < 8; i++) expect(reader.push(mp4.subarray(i, i + 1))).toEqual([]);
    expect(protocolError(() => reader.push(mp4.subarray(8, 9))).code).toBe('FLV_MALFORMED');
  });

  it('refuses an implausible DataOffset', () => {
    for (const offset of [0, 8, 1025, 0x7fffffff, 0xffffffff]) {
      const header = Buffer.from(FLV_HEADER);
      header.writeUInt32BE(offset, 5);
      expect(protocolError(() => new FlvStreamReader().push(header)).code, `DataOffset ${offset}`).toBe('FLV_MALFORMED');
    }
  });

  it('skips the extra header bytes a larger DataOffset announces', () => {
    const header = Buffer.concat([FLV_HEADER.subarray(0, 9), Buffer.alloc(11, 0xee), Buffer.alloc(4)]);
    header.writeUInt32BE(20, 5);
    const stream = Buffer.concat([header, flv.subarray(13)]);
    expect(plain(readAll(stream, [1]))).toEqual(plain(expected));
    expect(plain(readAll(stream, [5000]))).toEqual(plain(expected));
  });

  it('refuses a tag over the cap from its header alone, before its body is buffered', () => {
    const reader = new FlvStreamReader(1000);
    expect(reader.push(FLV_HEADER)).toEqual([]);
    expect(reader.push(tagBytes(9, 0, Buffer.alloc(1000, 1)))).toHaveLength(1);
    const header = tagBytes(9, 40, Buffer.alloc(1001)).subarray(0, 11);
    expect(reader.push(header.subarray(0, 10))).toEqual([]);
    // The announced size (up to 16 MiB) is refused on the 11th header byte, not after buffering it.
    expect(protocolError(() => reader.push(header.subarray(10))).code).toBe('FLV_MALFORMED');
    const huge = Buffer.from([9, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0]);
    const fresh = new FlvStreamReader(1000);
    fresh.push(FLV_HEADER);
    expect(protocolError(() => fresh.push(huge)).code).toBe('FLV_MALFORMED');
  });

  it('reads 32-bit timestamps (TimestampExtended is the high byte) and masks the filter bit off the type', () => {
    const stream = Buffer.concat([
      FLV_HEADER,
      tagBytes(8, 0x12345678, Buffer.from('af01aa', 'hex')),
      tagBytes(9, 0xfedcba98, Buffer.from('2701000000bb', 'hex')),
      tagBytes(0x20 | 18, 0x00ffffff, Buffer.from('02000a', 'hex')),
      tagBytes(9, 5, Buffer.alloc(0)),
    ]);
    const want = [
      { type: 8, timestamp: 0x12345678, body: 'af01aa' },
      { type: 9, timestamp: 0xfedcba98, body: '2701000000bb' },
      { type: 18, timestamp: 0x00ffffff, body: '02000a' },
      { type: 9, timestamp: 5, body: '' },
    ];
    expect(plain(readAll(stream, [stream.length]))).toEqual(want);
    expect(plain(readAll(stream, [1]))).toEqual(want);
  });

  it('waits for the rest of a header or a tag header', () => {
    const reader = new FlvStreamReader();
    expect(reader.push(FLV_HEADER.subarray(0, 5))).toEqual([]);
    expect(reader.push(FLV_HEADER.subarray(5, 12))).toEqual([]);
    expect(reader.push(FLV_HEADER.subarray(12))).toEqual([]);
    const tag = tagBytes(8, 21, Buffer.from('af01', 'hex'));
    expect(reader.push(tag.subarray(0, 10))).toEqual([]);
    expect(reader.push(tag.subarray(10, tag.length - 1))).toEqual([]);
    expect(plain(reader.push(tag.subarray(tag.length - 1)))).toEqual([{ type: 8, timestamp: 21, body: 'af01' }]);
  });
});
