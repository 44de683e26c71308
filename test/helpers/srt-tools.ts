import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import type { Proc } from './ffmpeg.js';

/** A UDP port that was free a moment ago, for SRT tools that cannot bind port 0 and report it. */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
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

/** ffmpeg's SRT URL; its latency option is in microseconds. */
export function srtUrl(port: number, o: { mode: 'caller' | 'listener'; streamId?: string; passphrase?: string; latencyMs?: number; timeoutUs?: number }): string {
  const q = [`mode=${o.mode}`, `latency=${(o.latencyMs ?? 120) * 1000}`];
  if (o.streamId !== undefined) q.push(`streamid=${o.streamId}`);
  if (o.passphrase !== undefined) q.push(`passphrase=${o.passphrase}`, 'pbkeylen=16');
  if (o.timeoutUs !== undefined) q.push(`timeout=${o.timeoutUs}`);
  return `srt://127.0.0.1:${port}?${q.join('&')}`;
}

/** ffmpeg pushing testsrc2 + sine as H.264/AAC in MPEG-TS over SRT, in real time. */
export function publishSrt(url: string, seconds: number): Proc {
  return run('ffmpeg', [
    '-hide_banner', '-nostdin', '-loglevel', 'warning', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', String(seconds),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p', '-g', '25',
    '-c:a', 'aac', '-b:a', '96k',
    '-f', 'mpegts', url,
  ]);
}

/**
 * ffmpeg reading MPEG-TS over SRT (as caller or listener) into a TS file for `seconds`:
 * MPEG-TS has no end-of-stream signal, so a reader would otherwise wait for more.
 */
export function recordSrt(url: string, outFile: string, seconds: number, o: { keepTimestamps?: boolean } = {}): Proc {
  // keepTimestamps: the file keeps the sender's timestamps (ffmpeg otherwise starts it at its own).
  return run('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'warning', ...(o.keepTimestamps ? ['-copyts'] : []), '-i', url, '-t', String(seconds), '-c', 'copy', '-f', 'mpegts', '-y', outFile]);
}

/** srt-live-transmit as an SRT listener serving whatever MPEG-TS arrives on a local UDP port. */
export function srtLiveTransmitListener(port: number, inputUdpPort: number): Proc {
  // Reads MPEG-TS from a local UDP port (fed by ffmpeg) and serves it to one SRT caller.
  return run('srt-live-transmit', ['-q', `udp://127.0.0.1:${inputUdpPort}`, `srt://:${port}?mode=listener`]);
}

/** ffmpeg sending testsrc2 + sine as MPEG-TS to a UDP port, in real time. */
export function publishUdp(port: number, seconds: number): Proc {
  return run('ffmpeg', [
    '-hide_banner', '-nostdin', '-loglevel', 'warning', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', String(seconds),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p', '-g', '25',
    '-c:a', 'aac', '-b:a', '96k',
    '-f', 'mpegts', `udp://127.0.0.1:${port}?pkt_size=1316`,
  ]);
}

/**
 * srt-live-transmit as an SRT caller relaying the MPEG-TS that arrives on a local UDP port
 * byte for byte: unlike ffmpeg, it does not remux, so damage in the TS reaches the far end.
 * `query` is srt-live-transmit's (its latency is in milliseconds).
 */
export function srtLiveTransmitCaller(inputUdpPort: number, srtPort: number, query: string): Proc {
  return run('srt-live-transmit', ['-q', `udp://127.0.0.1:${inputUdpPort}`, `srt://127.0.0.1:${srtPort}?${query}`]);
}

/** Sends MPEG-TS bytes to a UDP port in 1316-byte datagrams, paced evenly over `seconds`. */
export async function sendTsOverUdp(port: number, ts: Buffer, seconds: number): Promise<void> {
  const socket = createSocket('udp4');
  const DATAGRAM = 7 * 188;
  const count = Math.ceil(ts.length / DATAGRAM);
  const started = Date.now();
  try {
    for (let i = 0; i < count; i++) {
      const due = started + (i / count) * seconds * 1000;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      await new Promise<void>((resolve, reject) => socket.send(ts.subarray(i * DATAGRAM, (i + 1) * DATAGRAM), port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
    }
  } finally {
    socket.close();
  }
}
