/**
 * NAL unit plumbing shared by H.264 and HEVC: the Annex B byte stream format (ITU-T
 * H.264 Annex B, H.265 Annex B) that MPEG-TS carries, and (re-exported from the shared
 * bitstream module) the RBSP bit reader for the few parameter-set fields the decoder
 * configuration records need.
 */
export { RbspEnd, RbspReader } from '../bitstream/rbsp-reader.js';

const START_CODE = Buffer.from([0, 0, 1]);

/**
 * Splits an Annex B access unit into NAL units (views into `data`, no copies). Both
 * 3-byte and 4-byte start codes work: the extra zero of a 4-byte one (zero_byte) is
 * trailing zero data of the unit before, which B.2 allows and which is trimmed. Bytes
 * before the first start code belong to no NAL unit and are ignored.
 */
export function splitAnnexB(data: Buffer): Buffer[] {
  const units: Buffer[] = [];
  let at = data.indexOf(START_CODE);
  while (at >= 0) {
    const start = at + 3;
    const next = data.indexOf(START_CODE, start);
    let end = next < 0 ? data.length : next;
    while (end > start && data[end - 1] === 0) end -= 1;
    if (end > start) units.push(data.subarray(start, end));
    at = next;
  }
  return units;
}
