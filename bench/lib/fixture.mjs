// The benchmark's media, made with ffmpeg once and kept in bench-results/fixture/:
// 1080p30 H.264 yuv420p at about 6 Mbit/s (CBR-ish), a keyframe every 2 s, AAC 128k, as
// FLV (what the publisher sends) plus an MPEG-TS copy (for SRT); and a tiny 180p stream
// for the idle-flows memory test. Temporal noise keeps x264 from undershooting the rate
// on a synthetic picture.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';

function ffmpeg(args, what) {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', ...args], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`ffmpeg (${what}) failed: ${r.stderr || r.error?.message}`);
}

/** Writes to a temp name and renames, so an interrupted run leaves no half file behind. */
function make(file, args, what, log) {
  if (existsSync(file) && statSync(file).size > 0) return false;
  log(`generating ${what} ...`);
  const tmp = `${file}.part`;
  ffmpeg([...args, tmp], what);
  renameSync(tmp, file);
  return true;
}

export function ensureFixtures(dir, seconds, log) {
  mkdirSync(dir, { recursive: true });
  const flv = join(dir, `main-1080p30-6M-${seconds}s.flv`);
  const ts = join(dir, `main-1080p30-6M-${seconds}s.ts`);
  const tiny = join(dir, 'tiny-180p-10s.flv');
  const t0 = Date.now();
  let made = make(
    flv,
    [
      '-f', 'lavfi', '-i', 'testsrc2=size=1920x1080:rate=30,noise=alls=8:allf=t',
      '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-t', String(seconds),
      '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p',
      '-b:v', '6M', '-maxrate', '6M', '-bufsize', '12M', '-g', '60', '-keyint_min', '60', '-sc_threshold', '0',
      '-c:a', 'aac', '-b:a', '128k', '-ac', '2',
      '-f', 'flv',
    ],
    `the ${seconds} s 1080p30 fixture`,
    log,
  );
  made = make(ts, ['-i', flv, '-c', 'copy', '-f', 'mpegts'], 'its MPEG-TS copy', log) || made;
  made =
    make(
      tiny,
      [
        '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=15',
        '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=22050',
        '-t', '10',
        '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-b:v', '80k', '-maxrate', '80k', '-bufsize', '160k', '-g', '30',
        '-c:a', 'aac', '-b:a', '32k', '-ac', '1',
        '-f', 'flv',
      ],
      'the tiny idle-publisher fixture',
      log,
    ) || made;
  if (made) log(`fixtures ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return { flv, ts, tiny };
}

/**
 * FLV file -> { tags: [{ type: 8|9|18, timestamp, body }], durationMs, bytesPerSecond }.
 * bytesPerSecond counts tag bodies: what a relay must deliver at real-time pace.
 */
export function readFlv(file) {
  const buf = readFileSync(file);
  if (buf.length < 13 || buf.toString('latin1', 0, 3) !== 'FLV') throw new Error(`${file} is not FLV`);
  let off = buf.readUInt32BE(5) + 4;
  const tags = [];
  let bytes = 0;
  while (off + 11 <= buf.length && tags.length < 1_000_000) {
    const type = buf[off] & 0x1f;
    const size = buf.readUIntBE(off + 1, 3);
    const timestamp = (buf.readUIntBE(off + 4, 3) | (buf[off + 7] << 24)) >>> 0;
    if (off + 11 + size > buf.length) break;
    const body = buf.subarray(off + 11, off + 11 + size);
    tags.push({ type, timestamp, body });
    if (type !== 18) bytes += size;
    off += 11 + size + 4;
  }
  const media = tags.filter((t) => t.type !== 18);
  const last = media.reduce((m, t) => Math.max(m, t.timestamp), 0);
  const video = media.filter((t) => t.type === 9);
  const frame = video.length > 1 ? (video[video.length - 1].timestamp - video[0].timestamp) / (video.length - 1) : 33;
  const durationMs = Math.round(last + frame);
  return { tags, durationMs, bytesPerSecond: (bytes * 1000) / durationMs };
}
