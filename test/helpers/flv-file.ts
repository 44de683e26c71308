import { readFile } from 'node:fs/promises';
import type { ContainerInput } from '../../src/protocol/container.js';
import { parseAudioTag, parseVideoTag } from '../../src/protocol/flv/tag.js';

/** One FLV tag (Adobe FLV spec, annex E.4.1): 8 audio, 9 video, 18 script data. */
export interface FlvFileTag {
  type: number;
  /** Milliseconds (24 bits + 8 extended bits). */
  timestamp: number;
  body: Buffer;
}

export interface FlvFile {
  hasAudio: boolean;
  hasVideo: boolean;
  tags: FlvFileTag[];
}

/** Parses a whole FLV file; strict, since its input is a file the test just made with ffmpeg. */
export function parseFlv(bytes: Buffer): FlvFile {
  if (bytes.length < 13 || bytes.toString('latin1', 0, 3) !== 'FLV') throw new Error('not an FLV file');
  const flags = bytes[4]!;
  const headerSize = bytes.readUInt32BE(5);
  const tags: FlvFileTag[] = [];
  // The header is followed by PreviousTagSize0 (always 0).
  let offset = headerSize + 4;
  while (offset < bytes.length) {
    if (bytes.length - offset < 11) throw new Error(`truncated tag header at byte ${offset}`);
    const type = bytes[offset]! & 0x1f;
    const size = bytes.readUIntBE(offset + 1, 3);
    const timestamp = (bytes.readUIntBE(offset + 4, 3) | (bytes[offset + 7]! << 24)) >>> 0;
    const bodyStart = offset + 11;
    if (bodyStart + size + 4 > bytes.length) throw new Error(`truncated tag body at byte ${offset}`);
    tags.push({ type, timestamp, body: bytes.subarray(bodyStart, bodyStart + size) });
    offset = bodyStart + size + 4;
  }
  return { hasAudio: (flags & 0x04) !== 0, hasVideo: (flags & 0x01) !== 0, tags };
}

/** One tag as it sits in a file or an RTMP aggregate message: 11-byte header, body, PreviousTagSize. */
export function flvTagBytes({ type, timestamp, body }: FlvFileTag): Buffer {
  const head = Buffer.alloc(11);
  head[0] = type;
  head.writeUIntBE(body.length, 1, 3);
  head.writeUIntBE(timestamp & 0xffffff, 4, 3);
  head[7] = timestamp >>> 24;
  const prev = Buffer.alloc(4);
  prev.writeUInt32BE(11 + body.length);
  return Buffer.concat([head, body, prev]);
}

export async function readFlvFile(path: string): Promise<FlvFile> {
  return parseFlv(await readFile(path));
}

/** Video tags that carry a coded frame (not AVC sequence headers or end-of-sequence markers). */
export function isVideoFrame(tag: Pick<FlvFileTag, 'type' | 'body'>): boolean {
  return tag.type === 9 && tag.body.length > 1 && (tag.body[0]! & 0x0f) === 7 && tag.body[1] === 1;
}

/** A tag as a hub message (a container muxer's input): headers and keyframes as the hub classifies them; script data is metadata. */
export function toContainerInput(tag: FlvFileTag): ContainerInput {
  if (tag.type === 9) {
    const info = parseVideoTag(tag.body);
    return { kind: 'video', timestamp: tag.timestamp, payload: tag.body, isKeyframe: info.isKeyframe, isSequenceHeader: info.isSequenceHeader };
  }
  if (tag.type === 8) {
    const info = parseAudioTag(tag.body);
    return { kind: 'audio', timestamp: tag.timestamp, payload: tag.body, isKeyframe: false, isSequenceHeader: info.isSequenceHeader };
  }
  return { kind: 'data', timestamp: tag.timestamp, payload: tag.body, isKeyframe: false, isSequenceHeader: true };
}
