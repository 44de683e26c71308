import { decodeAmf0, encodeAmf0, type AmfObject } from '../amf/amf0.js';

/** Keys that describe a finished file, which a live recording is not (yet). */
const FILE_ONLY_KEYS = ['duration', 'filesize'];

/**
 * The onMetaData body for a recorded file: without `duration` and `filesize`. An encoder
 * that publishes a file (or a sender that copies them) announces that file's length,
 * and a reader trusts it over the tags it reads: ffprobe would report the source's
 * duration for every segment. Anything that is not an onMetaData object passes unchanged.
 */
export function metadataForFile(payload: Buffer): Buffer {
  let values;
  try {
    values = decodeAmf0(payload);
  } catch {
    return payload;
  }
  const [name, data] = values;
  if (name !== 'onMetaData' || typeof data !== 'object' || data === null || Array.isArray(data) || data instanceof Date) return payload;
  if (!FILE_ONLY_KEYS.some((k) => k in data)) return payload;
  const kept: AmfObject = {};
  for (const [k, v] of Object.entries(data)) if (!FILE_ONLY_KEYS.includes(k)) kept[k] = v;
  return encodeAmf0(['onMetaData', kept, ...values.slice(2)]);
}
