import { ProtocolError } from '../../lib/errors.js';

export interface AggregatePart {
  kind: 'audio' | 'video';
  timestamp: number;
  payload: Buffer;
}

/**
 * Splits an RTMP aggregate message (type 22): a run of FLV tags, each an 11-byte header,
 * a body and a 4-byte back pointer. Sub-tag timestamps are relative to the first one and
 * rebased on the aggregate's own timestamp. Tags other than audio and video are skipped.
 */
export function splitAggregate(payload: Buffer, timestamp: number): AggregatePart[] {
  const parts: AggregatePart[] = [];
  let offset = 0;
  let first: number | undefined;
  while (offset < payload.length) {
    if (payload.length - offset < 11) throw new ProtocolError('RTMP_BAD_AGGREGATE', `aggregate message truncated at byte ${offset}`);
    const type = payload[offset]! & 0x1f;
    const size = payload.readUIntBE(offset + 1, 3);
    const tagTime = (payload.readUIntBE(offset + 4, 3) | (payload[offset + 7]! << 24)) >>> 0;
    const bodyStart = offset + 11;
    if (bodyStart + size + 4 > payload.length) throw new ProtocolError('RTMP_BAD_AGGREGATE', `aggregate sub-tag of ${size} bytes overruns the message at byte ${offset}`);
    first ??= tagTime;
    if (type === 8 || type === 9) {
      parts.push({ kind: type === 8 ? 'audio' : 'video', timestamp: (timestamp + (tagTime - first)) >>> 0, payload: payload.subarray(bodyStart, bodyStart + size) });
    }
    offset = bodyStart + size + 4;
  }
  return parts;
}
