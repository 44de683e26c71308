// The third-party RTMP peers that restream tests push to and pull from work with
// the real ffmpeg: publish and play, restart on the same port, and a kill that a
// running publisher notices.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { delay, play, probeStreams, publish, videoFrames, waitFor } from '../helpers/ffmpeg.js';
import { nginxRtmpAvailable, startNginxRtmp, startNodeMediaServer, type RtmpPeer } from '../helpers/peers.js';

// Neither peer ends a player when the publisher leaves (nginx-rtmp sends
// UnpublishNotify, which ffmpeg ignores; node-media-server keeps players attached
// through its 30 s publisher grace window), so players end by read timeout a few
// seconds after the data stops; this -rw_timeout comes later than play()'s 15 s and wins.
const PLAYER_ENDS = ['-rw_timeout', '2000000'];

// CI installs nginx through scripts/setup.sh: there a missing nginx fails the tests.
const nginxSkip = !nginxRtmpAvailable() && !process.env.CI
  ? 'nginx or libnginx-mod-rtmp is not installed: run scripts/setup.sh'
  : null;

const peers: { name: string; skip: string | null; start: () => Promise<RtmpPeer> }[] = [
  { name: 'nginx-rtmp', skip: nginxSkip, start: () => startNginxRtmp() },
  { name: 'node-media-server', skip: null, start: () => startNodeMediaServer() },
];

async function publishAndPlay(peer: RtmpPeer, dir: string, stream: string): Promise<void> {
  const url = peer.url('live', stream);
  const out = join(dir, `${stream}.flv`);
  const pub = publish(url, { seconds: 4 });
  await delay(1_000);
  const player = play(url, out, PLAYER_ENDS);
  const pubResult = await pub.done;
  expect(pubResult.code, `${pubResult.stderr}\n${peer.logs()}`).toBe(0);
  const playResult = await player.done;
  expect(playResult.code, `${playResult.stderr}\n${peer.logs()}`).toBe(0);
  const streams = await probeStreams(out);
  expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
  const video = streams.find((s) => s.codec_type === 'video')!;
  expect([video.width, video.height]).toEqual([640, 360]);
  // The player joined about 1 s into a 4 s publish.
  expect(videoFrames(streams)).toBeGreaterThanOrEqual(2 * 25);
}

for (const p of peers) {
  describe(p.skip ? `${p.name} (skipped: ${p.skip})` : p.name, () => {
    let peer: RtmpPeer | undefined;
    let dir = '';

    beforeAll(async () => {
      if (p.skip) return;
      dir = await mkdtemp(join(tmpdir(), 'flowrelay-peers-'));
      peer = await p.start();
    });

    afterAll(async () => {
      await peer?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('relays an ffmpeg publish to an ffmpeg player', async (ctx) => {
      if (p.skip) ctx.skip(p.skip);
      await publishAndPlay(peer!, dir, 'first');
    });

    it('restart() serves a new publish on the same port', async (ctx) => {
      if (p.skip) ctx.skip(p.skip);
      const port = peer!.port;
      const before = peer!.exited;
      await peer!.restart();
      expect((await before).signal === 'SIGKILL', 'stopped gracefully by SIGTERM').toBe(false);
      expect(peer!.port).toBe(port);
      await publishAndPlay(peer!, dir, 'first');
    });

    it('kill() makes a running publisher fail; restart() brings the peer back', async (ctx) => {
      if (p.skip) ctx.skip(p.skip);
      const pub = publish(peer!.url('live', 'doomed'), { seconds: 30 });
      let ended = false;
      void pub.done.then(() => (ended = true));
      await delay(1_500);
      expect(ended, 'publisher still running before the kill').toBe(false);
      peer!.kill();
      expect((await peer!.exited).signal).toBe('SIGKILL');
      await waitFor(() => ended, 'the publisher to notice the kill', 15_000);
      const r = await pub.done;
      expect(r.code, r.stderr).not.toBe(0);

      await peer!.restart();
      const again = await publish(peer!.url('live', 'doomed'), { seconds: 1 }).done;
      expect(again.code, `${again.stderr}\n${peer!.logs()}`).toBe(0);
    });

    it('stop() ends the process gracefully and frees the port', async (ctx) => {
      if (p.skip) ctx.skip(p.skip);
      const port = peer!.port;
      await peer!.stop();
      expect(await peer!.exited).toEqual({ code: 0, signal: null });
      // A fresh peer can take the port at once.
      const again = p.name === 'nginx-rtmp' ? await startNginxRtmp({ port }) : await startNodeMediaServer({ port });
      expect(again.port).toBe(port);
      await again.stop();
    });
  });
}
