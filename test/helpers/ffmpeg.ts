import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface Proc {
  proc: ChildProcess;
  /** Resolves when the process ends; never rejects. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

function run(command: string, args: string[]): Proc {
  const proc = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-20_000);
  });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    proc.once('error', (err) => resolve({ code: -1, signal: null, stderr: `${stderr}\n${err.message}` }));
    proc.once('exit', (code, signal) => resolve({ code, signal, stderr }));
  });
  return { proc, done };
}

export interface PublishOptions {
  seconds: number;
  width?: number;
  height?: number;
  fps?: number;
  /** Keyframe interval in frames. */
  gop?: number;
  /** Lossless H.264 (qp 0): a very high bitrate, for backpressure tests. */
  lossless?: boolean;
  /** Added to every timestamp (ffmpeg's -output_ts_offset), e.g. to start near a wrap. */
  tsOffsetSeconds?: number;
}

/**
 * ffmpeg pushing testsrc2 + a sine tone as H.264 (yuv420p, what players and services
 * accept) + AAC, in real time, to an RTMP URL.
 */
export function publish(url: string, o: PublishOptions): Proc {
  const { seconds, width = 640, height = 360, fps = 25, gop = 25, lossless = false, tsOffsetSeconds } = o;
  return run('ffmpeg', [
    '-hide_banner', '-nostdin', '-loglevel', 'warning', '-re',
    '-f', 'lavfi', '-i', `testsrc2=size=${width}x${height}:rate=${fps}`,
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-t', String(seconds),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p', '-g', String(gop),
    ...(lossless ? ['-qp', '0'] : []),
    '-c:a', 'aac', '-b:a', '96k',
    ...(tsOffsetSeconds !== undefined ? ['-output_ts_offset', String(tsOffsetSeconds)] : []),
    '-f', 'flv', url,
  ]);
}

/** ffmpeg playing an RTMP URL into an FLV file, copying streams (no re-encode). */
export function play(url: string, outFile: string, extraInputArgs: string[] = []): Proc {
  return run('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'warning', '-rw_timeout', '15000000', ...extraInputArgs, '-i', url, '-c', 'copy', '-f', 'flv', '-y', outFile]);
}

export interface StreamInfo {
  codec_type: string;
  codec_name: string;
  width?: number;
  height?: number;
  nb_read_frames?: string;
}

export async function probeStreams(file: string): Promise<StreamInfo[]> {
  const { stdout } = await execFileAsync('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_type,codec_name,width,height,nb_read_frames', '-of', 'json', file]);
  return (JSON.parse(stdout) as { streams: StreamInfo[] }).streams;
}

export interface PacketInfo {
  pts_time: string;
  dts_time: string;
  flags: string;
}

export async function probeVideoPackets(file: string): Promise<PacketInfo[]> {
  const { stdout } = await execFileAsync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time,dts_time,flags', '-of', 'json', file], { maxBuffer: 64 * 1024 * 1024 });
  return (JSON.parse(stdout) as { packets: PacketInfo[] }).packets;
}

/**
 * ffprobe reading a live URL until the stream ends: each packet's track and decode time
 * in ms, as the player saw them (no file in between, so no muxer's own limits apply).
 */
export async function probeLivePackets(url: string): Promise<{ kind: string; dtsMs: number }[]> {
  const { stdout } = await execFileAsync('ffprobe', ['-v', 'error', '-rw_timeout', '15000000', '-show_entries', 'packet=codec_type,dts_time', '-of', 'csv=p=0', url], { maxBuffer: 64 * 1024 * 1024 });
  return stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [kind = '', dts = ''] = line.split(',');
      return { kind, dtsMs: Math.round(Number(dts) * 1000) };
    });
}

export function videoFrames(streams: StreamInfo[]): number {
  return Number(streams.find((s) => s.codec_type === 'video')?.nb_read_frames ?? 0);
}

export function audioFrames(streams: StreamInfo[]): number {
  return Number(streams.find((s) => s.codec_type === 'audio')?.nb_read_frames ?? 0);
}

/** Resolves after ms; tests use it only to let real-time media flow, never to assert timing. */
export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls until cond() is true; bounded, so a broken daemon fails the test instead of
 * hanging it. `refresh` runs before every check (e.g. to fetch state from the API).
 */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000, refresh?: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await refresh?.();
    if (cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(refresh ? 200 : 50);
  }
}

/**
 * How long a file plays: the container's duration (format.duration, undefined if it has
 * none) and the span of its video packets' presentation times plus one frame.
 */
export async function probeDuration(file: string): Promise<{ format: number | undefined; videoSpan: number }> {
  const { stdout } = await execFileAsync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'json', file]);
  const raw = (JSON.parse(stdout) as { format?: { duration?: string } }).format?.duration;
  const packets = await probeVideoPackets(file);
  const pts = packets.map((p) => Number(p.pts_time)).filter((n) => Number.isFinite(n));
  const span = pts.length > 1 ? Math.max(...pts) - Math.min(...pts) + (Math.max(...pts) - Math.min(...pts)) / (pts.length - 1) : 0;
  return { format: raw === undefined || raw === 'N/A' ? undefined : Number(raw), videoSpan: span };
}

/** Decodes the whole file; resolves with ffmpeg's exit code and its error output. */
export async function decodeAll(file: string): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await execFileAsync('ffmpeg', ['-v', 'error', '-nostdin', '-i', file, '-f', 'null', '-'], { maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stderr };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    return { code: e.code ?? -1, stderr: e.stderr ?? '' };
  }
}
