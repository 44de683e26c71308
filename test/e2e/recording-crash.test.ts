import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { flowYaml, publishKey, spawnDaemon, tempConfig, type SpawnedDaemon } from '../helpers/daemon.js';
import { decodeAll, delay, probeDuration, probeStreams, publish, waitFor, type Proc } from '../helpers/ffmpeg.js';

interface Entry {
  id: string;
  flowId: string;
  file: string;
  format: string;
  status: string;
  startedAt: string;
  bytes: number;
  interrupted: boolean;
}

const FORMATS = { 'crash-mp4': 'mp4', 'crash-ts': 'mpegts', 'crash-flv': 'flv' } as const;

describe('recording survives kill -9 of the daemon', () => {
  const cleanups: (() => Promise<unknown> | void)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('every format plays up to within 2 s of the kill, and the index is repaired at the next start', async () => {
    const flows = Object.entries(FORMATS)
      .map(([id, format]) => flowYaml(id, { recording: { mode: 'automatic', format, timeoutSeconds: 30 } }))
      .join('');
    const cfg = await tempConfig(`rtmp: { listen: "127.0.0.1:0" }\nflows:\n${flows}`, ', minFreeSpace: 0');
    cleanups.push(cfg.cleanup);
    const indexFile = join(cfg.dir, 'data', 'recordings', 'index.json');
    const readIndex = async (): Promise<Entry[]> => {
      try {
        return (JSON.parse(await readFile(indexFile, 'utf8')) as { recordings: Entry[] }).recordings;
      } catch {
        return [];
      }
    };

    const daemon: SpawnedDaemon = await spawnDaemon(cfg.file);
    cleanups.push(() => void daemon.proc.kill('SIGKILL'));
    const pubs: Proc[] = Object.keys(FORMATS).map((id) => publish(daemon.url(publishKey(id)), { seconds: 60 }));
    cleanups.push(() => pubs.forEach((p) => p.proc.kill('SIGKILL')));

    let entries: Entry[] = [];
    await waitFor(() => entries.length === 3, 'three recordings to start', 20_000, async () => {
      entries = await readIndex();
    });
    // Let several seconds of media reach the files (no timing is asserted on this).
    await delay(7000);
    const killedAt = Date.now();
    daemon.proc.kill('SIGKILL');
    expect((await daemon.exited).signal).toBe('SIGKILL');
    for (const p of pubs) p.proc.kill('SIGKILL');

    for (const entry of entries) {
      const file = join(cfg.dir, 'data', 'recordings', entry.file);
      const recordedSeconds = (killedAt - Date.parse(entry.startedAt)) / 1000;
      const streams = await probeStreams(file);
      expect(streams.map((s) => s.codec_name).sort(), entry.file).toEqual(['aac', 'h264']);
      const { videoSpan } = await probeDuration(file);
      expect(Math.abs(videoSpan - recordedSeconds), `${entry.format}: plays ${videoSpan.toFixed(2)} s of ${recordedSeconds.toFixed(2)} s recorded`).toBeLessThanOrEqual(2);
      // Decodes to the end; a torn last write is the only damage allowed, and ffmpeg skips it.
      expect((await decodeAll(file)).code, entry.file).toBe(0);
    }

    // The next start finds the files it was writing and lists them as ready, interrupted.
    const again = await spawnDaemon(cfg.file);
    cleanups.push(() => void again.proc.kill('SIGKILL'));
    let repaired: Entry[] = [];
    await waitFor(() => repaired.length === 3 && repaired.every((e) => e.status === 'ready'), 'the index to be repaired', 10_000, async () => {
      repaired = await readIndex();
    });
    for (const e of repaired) {
      expect(e.interrupted).toBe(true);
      expect(e.bytes).toBe((await stat(join(cfg.dir, 'data', 'recordings', e.file))).size);
    }
    again.proc.kill('SIGTERM');
    await again.exited;
  });
});
