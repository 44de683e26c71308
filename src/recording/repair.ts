import { fmp4RecoverableLength } from '../protocol/mp4/recover.js';
import type { RecordingFileSystem } from './recording-fs.js';
import type { RecordingFormat } from './recording-index.js';

/**
 * Makes a file that ended abruptly (a crash, a failed write) play again, and returns its
 * size afterwards. Only fragmented MP4 needs it: FFmpeg refuses a file whose last moof is
 * torn, so it is cut back to its last whole fragment. MPEG-TS and FLV readers skip a torn
 * last packet or tag on their own.
 */
export async function repairTornEnd(fs: RecordingFileSystem, path: string, format: RecordingFormat, size: number): Promise<number> {
  if (format !== 'mp4') return size;
  const whole = await fmp4RecoverableLength((offset, length) => fs.read(path, offset, length), size);
  if (whole < size) await fs.truncate(path, whole);
  return whole;
}
