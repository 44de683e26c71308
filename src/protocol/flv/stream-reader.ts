/**
 * An FLV byte stream (ffmpeg writing `-f flv pipe:1`) to tags, incrementally: bytes in as
 * they arrive, whole tags out (Adobe FLV spec E.2, E.3). Sans-I/O; every length is
 * checked against a cap before anything is buffered.
 */
import { ProtocolError } from '../../lib/errors.js';

export interface FlvStreamTag {
  /** 8 audio, 9 video, 18 script data. */
  type: number;
  /** Milliseconds, 32 bits (Timestamp + TimestampExtended). */
  timestamp: number;
  body: Buffer;
}

const HEADER_SIGNATURE = 'FLV';
const TAG_HEADER_SIZE = 11;
const PREVIOUS_TAG_SIZE = 4;

export class FlvStreamReader {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  /** Whether the file header (DataOffset bytes and PreviousTagSize0) has been read. */
  private headerDone = false;
  /**
   * Bytes needed before anything can be parsed: the header, a tag header, or a whole tag
   * once its size is known. Until then chunks are only collected, so a large tag arriving
   * in many small chunks is joined once, not once per chunk.
   */
  private needed = 9;

  constructor(private readonly maxTagBytes = 16 * 1024 * 1024) {}

  /** Returns the tags this chunk completed. Throws ProtocolError on a stream that is not FLV. */
  push(chunk: Buffer): FlvStreamTag[] {
    this.buffered.push(chunk);
    this.bufferedBytes += chunk.length;
    if (this.bufferedBytes < this.needed) return [];
    const data = this.buffered.length === 1 ? chunk : Buffer.concat(this.buffered, this.bufferedBytes);
    const tags: FlvStreamTag[] = [];
    let at = 0;
    if (!this.headerDone) {
      if (data.toString('latin1', 0, 3) !== HEADER_SIGNATURE) throw new ProtocolError('FLV_MALFORMED', 'the stream does not start with an FLV header');
      const offset = data.readUInt32BE(5);
      if (offset < 9 || offset > 1024) throw new ProtocolError('FLV_MALFORMED', `FLV header DataOffset ${offset} is implausible`);
      if (data.length < offset + PREVIOUS_TAG_SIZE) return this.keep(data, offset + PREVIOUS_TAG_SIZE, tags);
      at = offset + PREVIOUS_TAG_SIZE;
      this.headerDone = true;
    }
    for (;;) {
      if (data.length - at < TAG_HEADER_SIZE) return this.keep(data.subarray(at), TAG_HEADER_SIZE, tags);
      const type = (data[at] as number) & 0x1f;
      const size = data.readUIntBE(at + 1, 3);
      if (size > this.maxTagBytes) throw new ProtocolError('FLV_MALFORMED', `FLV tag of ${size} bytes is over the ${this.maxTagBytes}-byte cap`);
      const length = TAG_HEADER_SIZE + size + PREVIOUS_TAG_SIZE;
      if (data.length - at < length) return this.keep(data.subarray(at), length, tags);
      const timestamp = (data.readUIntBE(at + 4, 3) | ((data[at + 7] as number) << 24)) >>> 0;
      // A copy: a view would pin the whole chunk it came in for as long as the tag lives (the GOP cache).
      tags.push({ type, timestamp, body: Buffer.from(data.subarray(at + TAG_HEADER_SIZE, at + TAG_HEADER_SIZE + size)) });
      at += length;
    }
  }

  private keep(rest: Buffer, needed: number, tags: FlvStreamTag[]): FlvStreamTag[] {
    this.buffered = rest.length > 0 ? [rest] : [];
    this.bufferedBytes = rest.length;
    this.needed = needed;
    return tags;
  }
}
