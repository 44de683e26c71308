/**
 * Hub messages to an FLV file (Adobe "Video File Format Specification v10.1", annex E.2
 * header and E.3 body). The hub's unit already is an FLV tag body, so each message costs
 * one 11-byte tag header in front and a PreviousTagSize behind, in one allocation.
 */
import type { ContainerInput, ContainerMuxer } from '../container.js';
import { metadataForFile } from './file-metadata.js';

const TAG_AUDIO = 8;
const TAG_VIDEO = 9;
const TAG_SCRIPT = 18;

const FILE_HEADER_SIZE = 9;
const TAG_HEADER_SIZE = 11;
const PREVIOUS_TAG_SIZE = 4;
/** DataSize is UI24. */
const MAX_DATA_SIZE = 0xffffff;
/** Timestamp (UI24) + TimestampExtended (UI8) make 32 bits of milliseconds that wrap. */
const TIMESTAMP_RANGE = 2 ** 32;

/**
 * 'FLV', version 1, TypeFlags audio (0x04) | video (0x01), DataOffset 9, then
 * PreviousTagSize0 = 0. Both flags are set because a live recording cannot know yet
 * whether both kinds will come; players treat the flags as a hint.
 */
const FILE_HEADER = Buffer.from([0x46, 0x4c, 0x56, 0x01, 0x05, 0x00, 0x00, 0x00, FILE_HEADER_SIZE, 0x00, 0x00, 0x00, 0x00]);

function tagType(kind: ContainerInput['kind']): number {
  switch (kind) {
    case 'audio': return TAG_AUDIO;
    case 'video': return TAG_VIDEO;
    case 'data': return TAG_SCRIPT;
  }
}

export class FlvFileMuxer implements ContainerMuxer {
  readonly counters = { skipped: 0, tags: 0 };
  private headerWritten = false;

  push(message: ContainerInput): Buffer[] {
    const body = message.kind === 'data' && message.isSequenceHeader ? metadataForFile(message.payload) : message.payload;
    // An empty body is no tag a player can use; an oversized one cannot be described.
    if (body.length === 0 || body.length > MAX_DATA_SIZE) {
      this.counters.skipped += 1;
      return [];
    }
    const head = this.headerWritten ? 0 : FILE_HEADER.length;
    const out = Buffer.allocUnsafe(head + TAG_HEADER_SIZE + body.length + PREVIOUS_TAG_SIZE);
    if (head > 0) {
      FILE_HEADER.copy(out, 0);
      this.headerWritten = true;
    }
    // Rebased timestamps are not negative; a negative one is clamped rather than wrapped
    // to 49 days.
    const ts = Math.max(0, Math.floor(message.timestamp)) % TIMESTAMP_RANGE;
    let at = head;
    out[at] = tagType(message.kind); // Reserved 00, Filter 0
    out.writeUIntBE(body.length, at + 1, 3);
    out.writeUIntBE(ts & 0xffffff, at + 4, 3);
    out[at + 7] = Math.floor(ts / 0x1000000); // TimestampExtended: bits 24..31
    out.writeUIntBE(0, at + 8, 3); // StreamID, always 0
    at += TAG_HEADER_SIZE;
    body.copy(out, at);
    at += body.length;
    out.writeUInt32BE(TAG_HEADER_SIZE + body.length, at);
    this.counters.tags += 1;
    return [out];
  }

  /** Every tag is written whole as it comes: nothing is held back. */
  flush(): Buffer[] {
    return [];
  }
}
