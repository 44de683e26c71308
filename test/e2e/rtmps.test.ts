import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { flowYaml, playKey, publishKey, startInProcess } from '../helpers/daemon.js';
import { play, probeStreams, publish, videoFrames, waitFor } from '../helpers/ffmpeg.js';

const execFileAsync = promisify(execFile);

describe('RTMPS listener', () => {
  it('accepts an ffmpeg publisher over TLS and serves players on RTMPS and plain RTMP', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flowrelay-tls-'));
    const cert = join(dir, 'tls.crt');
    const key = join(dir, 'tls.key');
    await execFileAsync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1']);
    const daemon = await startInProcess(`flows:\n${flowYaml('secure')}`, `, tls: { listen: "127.0.0.1:0", cert: ${JSON.stringify(cert)}, key: ${JSON.stringify(key)} }`);
    try {
      const tlsPort = daemon.app.addresses().find((a) => a.protocol === 'rtmps')!.address.port;
      const hub = daemon.app.registry.get('secure')!.hub;
      const overTls = play(`rtmps://127.0.0.1:${tlsPort}/live/${playKey('secure')}`, join(dir, 'tls.flv'));
      const plain = play(daemon.url(playKey('secure')), join(dir, 'plain.flv'));
      await waitFor(() => hub.readerCount === 2, 'players attached');
      const pub = await publish(`rtmps://127.0.0.1:${tlsPort}/live/${publishKey('secure')}`, { seconds: 3 }).done;
      expect(pub.code, pub.stderr).toBe(0);
      for (const [name, proc] of [['tls.flv', overTls], ['plain.flv', plain]] as const) {
        const done = await proc.done;
        expect(done.code, done.stderr).toBe(0);
        const streams = await probeStreams(join(dir, name));
        expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
        expect(videoFrames(streams)).toBeGreaterThanOrEqual(3 * 25 - 2);
      }
    } finally {
      await daemon.close();
    }
  });
});
