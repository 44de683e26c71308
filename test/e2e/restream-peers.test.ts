import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ConnectionReport } from '../../src/core/flow-parts.js';
import { flowYaml, outputTo, playKey, publishKey, reconfigure, startInProcess, type InProcessDaemon } from '../helpers/daemon.js';
import { delay, play, probeStreams, publish, videoFrames, waitFor } from '../helpers/ffmpeg.js';
import { nginxRtmpAvailable, startNginxRtmp, startNodeMediaServer } from '../helpers/peers.js';

function report(daemon: InProcessDaemon, flowId: string, output: string): ConnectionReport {
  return daemon.app.registry.get(flowId)!.outputs.get(output)!.output.report();
}

/** ffmpeg's own read timeout ends players on peers that never tell them the stream ended. */
const PEER_PLAYER_ARGS = ['-rw_timeout', '3000000'];

describe.skipIf(!nginxRtmpAvailable())('restreaming to nginx-rtmp and node-media-server', () => {
  it('one flow, three outputs (nginx-rtmp, node-media-server, a second flow): each plays back H.264 + AAC at the right size', async () => {
    const nginx = await startNginxRtmp();
    const nms = await startNodeMediaServer();
    const daemon = await startInProcess(`flows:\n${flowYaml('local-copy')}`);
    try {
      await reconfigure(daemon, `${flowYaml('src', {
        outputs: [
          { name: 'nginx', type: 'rtmp', url: nginx.url('live', 'fromrelay') },
          { name: 'nms', type: 'rtmp', url: nms.url('live', 'fromrelay') },
          outputTo('local', daemon.port, 'local-copy'),
        ],
      })}${flowYaml('local-copy')}`);
      const publisher = publish(daemon.url(publishKey('src')), { seconds: 8, width: 800, height: 448 });
      await waitFor(() => ['nginx', 'nms', 'local'].every((o) => report(daemon, 'src', o).status === 'connected'), 'all outputs connected', 15_000);
      await delay(1_500);
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-three-'));
      const players = {
        nginx: play(nginx.url('live', 'fromrelay'), join(dir, 'nginx.flv'), PEER_PLAYER_ARGS),
        nms: play(nms.url('live', 'fromrelay'), join(dir, 'nms.flv'), PEER_PLAYER_ARGS),
        local: play(daemon.url(playKey('local-copy')), join(dir, 'local.flv'), PEER_PLAYER_ARGS),
      };
      expect((await publisher.done).code).toBe(0);
      for (const [name, proc] of Object.entries(players)) {
        await proc.done;
        const streams = await probeStreams(join(dir, `${name}.flv`));
        const video = streams.find((s) => s.codec_type === 'video');
        expect(video?.codec_name, name).toBe('h264');
        expect([video?.width, video?.height], name).toEqual([800, 448]);
        expect(streams.find((s) => s.codec_type === 'audio')?.codec_name, name).toBe('aac');
        expect(videoFrames(streams), name).toBeGreaterThan(3 * 25);
      }
    } finally {
      await daemon.close();
      await nginx.stop();
      await nms.stop();
    }
  });

  it('a destination killed mid-stream: reconnecting with growing delays, reconnected when it returns; other outputs never stop', async () => {
    const nginx = await startNginxRtmp();
    const daemon = await startInProcess(`flows:\n${flowYaml('steady')}`);
    try {
      await reconfigure(daemon, `${flowYaml('src', {
        outputs: [
          { name: 'flaky', type: 'rtmp', url: nginx.url('live', 'flaky'), reconnect: { initialDelayMs: 300, maxDelayMs: 5000 } },
          outputTo('steady', daemon.port, 'steady'),
        ],
      })}${flowYaml('steady')}`);
      const publisher = publish(daemon.url(publishKey('src')), { seconds: 25 });
      await waitFor(() => report(daemon, 'src', 'flaky').status === 'connected', 'flaky output connected', 15_000);

      // Sample the steady output's byte counter every 250 ms for the rest of the test.
      const steadyBytes: number[] = [];
      const sampler = setInterval(() => steadyBytes.push(report(daemon, 'src', 'steady').bytes), 250);

      nginx.kill();
      await waitFor(() => report(daemon, 'src', 'flaky').status === 'reconnecting', 'flaky output reconnecting');
      // Let several attempts fail against the closed port, and watch the delays grow.
      const delays: number[] = [];
      let seenAttempts = report(daemon, 'src', 'flaky').attempts;
      await waitFor(() => {
        const r = report(daemon, 'src', 'flaky');
        if (r.attempts !== seenAttempts && r.nextAttemptAt && r.lastErrorAt) {
          seenAttempts = r.attempts;
          delays.push(r.nextAttemptAt.getTime() - r.lastErrorAt.getTime());
        }
        return delays.length >= 3;
      }, 'three failed reconnect attempts', 15_000);
      expect(delays[1]!).toBeGreaterThan(delays[0]!);
      expect(delays[2]!).toBeGreaterThan(delays[1]!);
      expect(report(daemon, 'src', 'flaky').lastError).toMatch(/connect|refused|closed/i);

      await nginx.restart();
      await waitFor(() => report(daemon, 'src', 'flaky').status === 'reconnected', 'flaky output reconnected', 15_000);
      await delay(1_000);
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-flaky-'));
      const after = play(nginx.url('live', 'flaky'), join(dir, 'after.flv'), PEER_PLAYER_ARGS);
      await delay(4_000);
      clearInterval(sampler);
      publisher.proc.kill('SIGINT');
      await publisher.done;
      await after.done;
      const streams = await probeStreams(join(dir, 'after.flv'));
      expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
      expect(videoFrames(streams)).toBeGreaterThan(25);
      expect(report(daemon, 'src', 'flaky').reconnects).toBe(1);

      // The steady output's counter grew across every two-second window of the outage.
      for (let i = 8; i < steadyBytes.length; i += 8) expect(steadyBytes[i]!, `sample ${i}`).toBeGreaterThan(steadyBytes[i - 8]!);
      expect(report(daemon, 'src', 'steady').reconnects).toBe(0);
    } finally {
      await daemon.close();
      await nginx.stop();
    }
  });

  it('an rtmp-pull flow fed by nginx-rtmp plays back through the daemon, and recovers after the upstream restarts', async () => {
    const nginx = await startNginxRtmp();
    const daemon = await startInProcess('flows: []\n');
    try {
      await reconfigure(
        daemon,
        `  - id: pulled
    inputs: [{ name: up, type: rtmp-pull, url: "${nginx.url('live', 'origin')}", reconnect: { initialDelayMs: 300, maxDelayMs: 2000 }, idleTimeoutMs: 5000 }]
    playback: { key: "${playKey('pulled')}" }
`,
      );
      const flow = daemon.app.registry.get('pulled')!;
      const pull = () => flow.pullInputs.get('up')!.report();
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-pull-'));

      const first = publish(nginx.url('live', 'origin'), { seconds: 6 });
      await waitFor(() => flow.hub.live, 'pulled stream live', 15_000);
      const player = play(daemon.url(playKey('pulled')), join(dir, 'before.flv'), PEER_PLAYER_ARGS);
      await first.done;
      await player.done;
      const before = await probeStreams(join(dir, 'before.flv'));
      expect(before.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
      expect(videoFrames(before)).toBeGreaterThan(25);
      expect(pull().status).toBe('connected');

      await nginx.stop();
      await waitFor(() => pull().status === 'reconnecting' || pull().status === 'failed_to_reconnect', 'pull notices the upstream is gone');
      await nginx.restart();
      const second = publish(nginx.url('live', 'origin'), { seconds: 8 });
      await waitFor(() => pull().status === 'reconnected' && flow.hub.live, 'pull reconnected and live', 20_000);
      const again = play(daemon.url(playKey('pulled')), join(dir, 'after.flv'), PEER_PLAYER_ARGS);
      await second.done;
      await again.done;
      const after = await probeStreams(join(dir, 'after.flv'));
      expect(after.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
      expect(videoFrames(after)).toBeGreaterThan(25);
      expect(pull().reconnects).toBeGreaterThanOrEqual(1);
    } finally {
      await daemon.close();
      await nginx.stop();
    }
  });
});
