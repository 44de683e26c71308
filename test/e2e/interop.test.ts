import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { flowYaml, playKey, publishKey, startInProcess } from '../helpers/daemon.js';
import { probeStreams, publish, videoFrames, waitFor } from '../helpers/ffmpeg.js';

/** librtmp (rtmpdump; the library OBS builds on) sends the digest ("FP9") handshake. */
describe('librtmp interop', () => {
  it('rtmpdump plays a live flow over the digest handshake', async () => {
    const logs: Record<string, unknown>[] = [];
    const daemon = await startInProcess(`flows:\n${flowYaml('lib')}`, '', logs);
    try {
      const out = join(await mkdtemp(join(tmpdir(), 'flowrelay-rtmpdump-')), 'rd.flv');
      const hub = daemon.app.registry.get('lib')!.hub;
      const dump = spawn('rtmpdump', ['-q', '-r', daemon.url(playKey('lib')), '--live', '-m', '15', '-o', out], { stdio: 'ignore' });
      const dumped = new Promise<number | null>((resolve) => dump.once('exit', resolve));
      await waitFor(() => hub.readerCount === 1, 'rtmpdump attached');
      const pub = await publish(daemon.url(publishKey('lib')), { seconds: 4 }).done;
      expect(pub.code, pub.stderr).toBe(0);
      expect(await dumped).toBe(0);
      const streams = await probeStreams(out);
      expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
      expect(videoFrames(streams)).toBeGreaterThanOrEqual(4 * 25 - 2);
      const handshakes = logs.filter((l) => l.msg === 'rtmp handshake complete');
      expect(handshakes.some((l) => l.digest === true)).toBe(true);
    } finally {
      await daemon.close();
    }
  });
});
