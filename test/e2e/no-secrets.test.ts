import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { playKey, publishKey, startInProcess } from '../helpers/daemon.js';
import { play, publish, waitFor } from '../helpers/ffmpeg.js';
import { publishSrt, srtUrl } from '../helpers/srt-tools.js';

const PASS = 'secret passphrase for srt 42';
const SRT_KEY = 'srt-secret-stream-key-0123';
const REMOTE_KEY = 'remote-destination-key-0987';

/**
 * Publishing, playing, refusals, restreaming and SRT with passphrases, all at debug log
 * level: neither the logs nor the status reports may contain a key or passphrase.
 */
describe('secrets stay out of logs and status', () => {
  it('no stream key, playback key or passphrase in any log line or status report', async () => {
    const logs: Record<string, unknown>[] = [];
    const daemon = await startInProcess(
      `srt: { listen: "127.0.0.1:0" }
flows:
  - id: studio
    inputs: [{ name: main, type: rtmp-push, streamKey: "${publishKey('studio')}" }]
    playback: { key: "${playKey('studio')}" }
    outputs:
      - { name: sink-in-url, type: rtmp, url: "rtmp://127.0.0.1:1/live/${REMOTE_KEY}", reconnect: { initialDelayMs: 100, failAfter: 1 } }
  - id: field
    inputs: [{ name: main, type: srt-listener, streamKey: "${SRT_KEY}", passphrase: "${PASS}" }]
    playback: { key: "${playKey('field')}" }
`,
      '',
      logs,
    );
    try {
      const dir = await mkdtemp(join(tmpdir(), 'flowrelay-secrets-'));
      const srtPort = daemon.app.srtPort()!;
      const player = play(daemon.url(playKey('studio')), join(dir, 'p.flv'));
      const publisher = publish(daemon.url(publishKey('studio')), { seconds: 4 });
      await publish(daemon.url(`${publishKey('studio')}-wrong`), { seconds: 1 }).done; 
      await publish(`rtmp://127.0.0.1:${daemon.port}/live/${playKey('field')}`, { seconds: 1 }).done;
      const srtUrlFor = (key: string, pass: string) => srtUrl(srtPort, { mode: 'caller', passphrase: pass, streamId: `#!::r=field,m=publish,s=${key}` });
      await publishSrt(srtUrlFor(`${SRT_KEY}x`, PASS), 1).done; 
      await publishSrt(srtUrlFor(SRT_KEY, `${PASS}x`), 1).done; 
      const srtPublisher = publishSrt(srtUrlFor(SRT_KEY, PASS), 4);
      await waitFor(() => daemon.app.registry.get('field')!.hub.live, 'srt publisher live', 10_000);
      const fieldPlayer = play(daemon.url(playKey('field')), join(dir, 'f.flv'), ['-t', '1']);
      await fieldPlayer.done;
      await Promise.all([publisher.done, player.done, srtPublisher.done]); 

      const status = daemon.app.registry.list().map((flow) => ({
        inputs: [...flow.inputs.entries()].map(([name, s]) => ({ name, ...s, transportStats: s.transportStats?.() })),
        pulls: [...flow.pullInputs.values()].map((p) => p.report()),
        outputs: [...flow.outputs.values()].map((o) => o.output.report()),
        refusals: flow.refusals,
      }));
      const text = `${JSON.stringify(logs)}\n${JSON.stringify(status)}`;
      expect(logs.length).toBeGreaterThan(20);
      for (const secret of [publishKey('studio'), playKey('studio'), playKey('field'), SRT_KEY, PASS, REMOTE_KEY]) {
        expect(text.includes(secret), `"${secret}" appears in logs or status`).toBe(false);
      }
      // And the things that must be there are: the refusals were logged, the output's target shown redacted.
      expect(text).toContain('publish refused');
      expect(text).toContain('<key redacted>');
    } finally {
      await daemon.close();
    }
  });
});
