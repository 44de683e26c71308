import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { flowYaml, playKey, publishKey, startInProcess, type InProcessDaemon } from '../helpers/daemon.js';
import { play, probeStreams, publish, videoFrames, waitFor } from '../helpers/ffmpeg.js';

const execFileAsync = promisify(execFile);

const rtmpReport = (daemon: InProcessDaemon) => daemon.app.listeners().find((l) => l.protocol === 'rtmp')!;

async function selfSignedPair(): Promise<{ dir: string; cert: string; key: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'flowrelay-tls-'));
  const cert = join(dir, 'tls.crt');
  const key = join(dir, 'tls.key');
  await execFileAsync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1']);
  return { dir, cert, key };
}

describe('RTMPS listener', () => {
  it('closes TLS connections that never finish their handshake within rtmp.handshakeTimeoutMs, so they cannot hold the connection caps', async () => {
    const { cert, key } = await selfSignedPair();
    const daemon = await startInProcess(`flows:\n${flowYaml('capped')}`, `, handshakeTimeoutMs: 1000, maxConnections: 3, tls: { listen: "127.0.0.1:0", cert: ${JSON.stringify(cert)}, key: ${JSON.stringify(key)} }`);
    const idle: Socket[] = [];
    try {
      const tlsPort = daemon.app.addresses().find((a) => a.protocol === 'rtmps')!.address.port;
      // Three connections that send nothing, one a partial ClientHello: all the caps allow.
      for (const bytes of [null, null, Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03])]) {
        const socket = connect(tlsPort, '127.0.0.1');
        socket.on('error', () => undefined);
        if (bytes) socket.write(bytes);
        idle.push(socket);
      }
      const closed = idle.map((socket) => new Promise((resolve) => socket.once('close', resolve)));
      await waitFor(() => rtmpReport(daemon).connections === 3, 'three connections held');
      await Promise.race([Promise.all(closed), new Promise((_r, reject) => setTimeout(() => reject(new Error('TLS connections still open after 8 s')), 8_000))]);
      await waitFor(() => rtmpReport(daemon).connections === 0, 'the caps released');
      expect(rtmpReport(daemon).refusals).toMatchObject({ tls_handshake_failed: 3 });
      const pub = await publish(daemon.url(publishKey('capped')), { seconds: 1 }).done;
      expect(pub.code, pub.stderr).toBe(0);
    } finally {
      for (const socket of idle) socket.destroy();
      await daemon.close();
    }
  });

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
