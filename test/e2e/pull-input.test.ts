import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionReport } from '../../src/core/flow-parts.js';
import { playKey, spawnDaemon, startInProcess, tempConfig, type InProcessDaemon } from '../helpers/daemon.js';
import { delay, play, probeDuration, probeStreams, videoFrames, waitFor } from '../helpers/ffmpeg.js';
import { killDaemonAndAwaitItsFfmpeg, pidsMatching } from '../helpers/orphans.js';

const execFileAsync = promisify(execFile);

/** A flow whose one input is `input` (flowYaml's is an rtmp-push input). */
function flowWithInput(id: string, input: Record<string, unknown>): string {
  return `  - id: ${id}\n    inputs: [${JSON.stringify(input)}]\n    playback: { key: "${playKey(id)}" }\n`;
}


/** A static file server for the fixtures, plus a route that sends an FLV header and then stalls. */
async function mediaServer(root: string): Promise<{ server: Server; base: string; stalled: ServerResponse[] }> {
  const stalled: ServerResponse[] = [];
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent((req.url ?? '/').split('?')[0]!));
    if (path.startsWith('/stall/')) {
      // Headers and the start of a stream, then nothing: a source stuck mid-stream.
      res.writeHead(200, { 'content-type': 'video/x-flv' });
      createReadStream(join(root, 'clip.flv'), { start: 0, end: 40_000 }).on('data', (d) => res.write(d));
      stalled.push(res);
      return;
    }
    const file = join(root, path);
    if (!file.startsWith(root)) return void res.writeHead(403).end();
    const stream = createReadStream(file);
    stream.on('error', () => res.writeHead(404).end());
    stream.on('open', () => {
      res.writeHead(200, { 'content-type': file.endsWith('.m3u8') ? 'application/vnd.apple.mpegurl' : 'application/octet-stream' });
      stream.pipe(res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, stalled };
}

describe('pull inputs through ffmpeg', () => {
  let dir: string;
  let media: Awaited<ReturnType<typeof mediaServer>>;
  let daemon: InProcessDaemon | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flowrelay-pull-'));
    const gen = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100', '-t', '10', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-pix_fmt', 'yuv420p', '-c:a', 'aac'];
    await execFileAsync('ffmpeg', [...gen, '-f', 'hls', '-hls_time', '2', '-hls_playlist_type', 'vod', '-hls_segment_filename', join(dir, 'seg%03d.ts'), join(dir, 'index.m3u8')]);
    await execFileAsync('ffmpeg', [...gen, '-f', 'flv', join(dir, 'clip.flv')]);
    media = await mediaServer(dir);
  });
  afterAll(async () => {
    await daemon?.close().catch(() => undefined);
    for (const res of media?.stalled ?? []) res.destroy();
    await new Promise((r) => media?.server.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  it('an HLS playlist served over HTTP plays back through the daemon', async () => {
    daemon = await startInProcess(`flows:\n${flowWithInput('hls', { name: 'src', type: 'pull', url: `${media.base}/index.m3u8`, realtime: true })}`);
    const flow = daemon.app.registry.get('hls')!;
    await waitFor(() => flow.hub.live, 'the pull to go live', 15_000);
    const out = join(dir, 'hls-played.flv');
    expect((await play(daemon.url(playKey('hls')), out, ['-t', '6']).done).code).toBe(0);
    const streams = await probeStreams(out);
    expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
    expect(streams.find((s) => s.codec_type === 'video')).toMatchObject({ width: 320, height: 240 });
    expect(videoFrames(streams)).toBeGreaterThan(100);
    expect((await probeDuration(out)).videoSpan).toBeGreaterThan(4);
    const report = flow.pullInputs.get('src')!.report();
    expect(report).toMatchObject({ status: 'connected', target: `${media.base}/index.m3u8` });
    expect(report.frames).toBeGreaterThan(100);
    expect(report.frames).toBe(flow.hub.counters.videoFrames + flow.hub.counters.audioFrames);
    await daemon.close();
    daemon = undefined;
  });

  it('an ffmpeg killed with SIGKILL is started again with backoff; one that stalls is stopped by the watchdog', async () => {
    const loopUrl = join(dir, 'clip.flv');
    daemon = await startInProcess(
      `flows:\n${flowWithInput('looped', { name: 'file', type: 'pull', url: loopUrl, loop: true, reconnect: { initialDelayMs: 200, maxDelayMs: 1000 } })}` +
        flowWithInput('stuck', { name: 'http', type: 'pull', url: `${media.base}/stall/stuck.flv`, idleTimeoutMs: 2000, reconnect: { initialDelayMs: 200, maxDelayMs: 1000 } }),
    );
    const looped = daemon.app.registry.get('looped')!;
    const input = () => looped.pullInputs.get('file')!.report();
    await waitFor(() => looped.hub.live, 'the file pull to go live', 15_000);
    let pids: number[] = [];
    await waitFor(() => (pids = pidsMatching(loopUrl)).length === 1, 'one ffmpeg for the file');
    process.kill(pids[0]!, 'SIGKILL');
    await waitFor(() => input().reconnects >= 1 && looped.hub.live, 'the input to come back', 15_000);
    const after = pidsMatching(loopUrl);
    expect(after).toHaveLength(1);
    expect(after[0]).not.toBe(pids[0]);
    expect(input().lastError).toMatch(/killed by SIGKILL/);

    const stuck = daemon.app.registry.get('stuck')!;
    const stuckReport = (): ConnectionReport => stuck.pullInputs.get('http')!.report();
    await waitFor(() => /no media from ffmpeg within 2000 ms|no media from upstream for 2000 ms/.test(stuckReport().lastError ?? ''), 'the watchdog to stop the stalled ffmpeg', 20_000);
    await waitFor(() => stuckReport().attempts >= 2, 'a new attempt after the stall', 10_000);
    // The last stderr lines of ffmpeg are in the status.
    expect(Array.isArray(stuckReport().log)).toBe(true);
    await daemon.close();
    daemon = undefined;
    // Closing the daemon stops its ffmpeg processes.
    await waitFor(() => pidsMatching(loopUrl).length === 0, 'ffmpeg to stop with the daemon', 10_000);
  });

  it('no ffmpeg outlives a daemon killed with SIGKILL', async () => {
    // A file of its own, so that only this daemon's ffmpeg matches.
    const marker = join(dir, 'orphan.flv');
    await copyFile(join(dir, 'clip.flv'), marker);
    const cfg = await tempConfig(`rtmp: { listen: "127.0.0.1:0" }\nflows:\n${flowWithInput('orphan', { name: 'file', type: 'pull', url: marker, loop: true })}`);
    try {
      await killDaemonAndAwaitItsFfmpeg(await spawnDaemon(cfg.file), marker, 'pull ffmpeg');
    } finally {
      await cfg.cleanup();
    }
    await delay(0);
  });
});
