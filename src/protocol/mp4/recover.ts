/**
 * Repair for a fragmented MP4 file that ended abruptly (power loss, a write cut short).
 * A file cut inside an mdat plays up to the cut, but one cut inside a moof does not open
 * at all in FFmpeg: the demuxer reads every moof while opening a seekable file, and a
 * truncated trun fails the whole open (mov_read_trun returns AVERROR_EOF or
 * AVERROR_INVALIDDATA, which mov_read_header passes on). Cutting the file back to its
 * last complete fragment makes it clean again.
 */

/** Reads up to `length` bytes at `offset` (fewer at the end of the file). */
export type ReadAt = (offset: number, length: number) => Promise<Buffer>;

const BOX_HEADER = 8;
const LARGE_BOX_HEADER = 16;

/**
 * The length of the longest prefix made of whole top-level boxes that ends with the init
 * segment or a complete moof + mdat pair; 0 when not even the init segment is whole.
 * Reads one box header per box. A box of size 0 ("to the end of the file") is taken for
 * the zeros a file system can leave after a crash, not for data: this muxer never writes
 * one.
 */
export async function fmp4RecoverableLength(read: ReadAt, fileSize: number): Promise<number> {
  let at = 0;
  let safe = 0;
  let sawMoov = false;
  let moofPending = false;
  while (at + BOX_HEADER <= fileSize) {
    const head = await read(at, Math.min(LARGE_BOX_HEADER, fileSize - at));
    if (head.length < BOX_HEADER) break;
    let size = head.readUInt32BE(0);
    const type = head.toString('latin1', 4, 8);
    if (size === 1) {
      if (head.length < LARGE_BOX_HEADER) break;
      size = Number(head.readBigUInt64BE(8));
    }
    if (size < BOX_HEADER || at + size > fileSize) break;
    at += size;
    if (type === 'moov') sawMoov = true;
    // A moof counts only together with the mdat that holds its samples.
    if (type === 'moof') moofPending = true;
    else if (type === 'mdat') moofPending = false;
    if (!moofPending) safe = at;
  }
  return sawMoov ? safe : 0;
}
