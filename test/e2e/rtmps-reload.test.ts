import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, flowYaml, playKey, publishKey, startInProcess, tempConfig } from '../helpers/daemon.js';
import { play, probeStreams, publish, videoFrames, waitFor } from '../helpers/ffmpeg.js';

const execFileAsync = promisify(execFile);

/** A self-signed certificate for 127.0.0.1 with the given CN, written to `<base>.crt` / `<base>.key`. */
async function selfSigned(base: string, cn: string): Promise<{ cert: string; key: string }> {
  const files = { cert: `${base}.crt`, key: `${base}.key` };
  await execFileAsync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', files.key, '-out', files.cert, '-days', '1', '-subj', `/CN=${cn}`, '-addext', 'subjectAltName=IP:127.0.0.1']);
  return files;
}

/** The CN a fresh TLS connection is served (no RTMP spoken; the handshake is all we need). */
function servedCn(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const cn = socket.getPeerCertificate().subject.CN;
      socket.destroy();
      resolve(Array.isArray(cn) ? cn.join(',') : String(cn));
    });
    socket.once('error', reject);
    socket.setTimeout(5_000, () => socket.destroy(new Error('TLS handshake timed out')));
  });
}

/** Polls fresh connections until one is served `cn`; bounded. */
async function waitForCn(port: number, cn: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    last = await servedCn(port);
    if (last === cn) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`still served CN ${last} after ${timeoutMs} ms, expected ${cn}`);
}

/** Like certbot or an atomic deploy: write under temporary names, then rename over. */
async function installByRename(from: { cert: string; key: string }, to: { cert: string; key: string }): Promise<void> {
  await writeFile(`${to.cert}.tmp`, await readFile(from.cert));
  await writeFile(`${to.key}.tmp`, await readFile(from.key));
  await rename(`${to.cert}.tmp`, to.cert);
  await rename(`${to.key}.tmp`, to.key);
}

describe('RTMPS certificate reload', () => {
  it('serves a replaced certificate to new connections, streams over it, and keeps it when a broken key is written', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flowrelay-tls-reload-'));
    const certDir = await mkdtemp(join(dir, 'certs-'));
    const live = { cert: join(certDir, 'tls.crt'), key: join(certDir, 'tls.key') };
    await selfSigned(join(certDir, 'tls'), 'cert-a');
    const b = await selfSigned(join(dir, 'b'), 'cert-b');
    const logs: Record<string, unknown>[] = [];
    const daemon = await startInProcess(
      `flows:\n${flowYaml('secure')}`,
      `, tls: { listen: "127.0.0.1:0", cert: ${JSON.stringify(live.cert)}, key: ${JSON.stringify(live.key)} }`,
      logs,
    );
    try {
      const tlsPort = daemon.app.addresses().find((a) => a.protocol === 'rtmps')!.address.port;
      expect(await servedCn(tlsPort)).toBe('cert-a');

      await installByRename(b, live);
      await waitForCn(tlsPort, 'cert-b');
      expect(logs.find((l) => l.msg === 'rtmps certificate reloaded')).toMatchObject({ subject: 'CN=cert-b', certPath: live.cert, keyPath: live.key });

      // Ingest and playback over RTMPS with the new certificate.
      const hub = daemon.app.registry.get('secure')!.hub;
      const out = join(dir, 'played.flv');
      const player = play(`rtmps://127.0.0.1:${tlsPort}/live/${playKey('secure')}`, out);
      await waitFor(() => hub.readerCount === 1, 'player attached');
      const pub = await publish(`rtmps://127.0.0.1:${tlsPort}/live/${publishKey('secure')}`, { seconds: 3 }).done;
      expect(pub.code, pub.stderr).toBe(0);
      const played = await player.done;
      expect(played.code, played.stderr).toBe(0);
      const streams = await probeStreams(out);
      expect(streams.map((s) => s.codec_name).sort()).toEqual(['aac', 'h264']);
      expect(videoFrames(streams)).toBeGreaterThanOrEqual(3 * 25 - 2);

      // A broken key: logged with the file names and OpenSSL's reason; cert-b stays.
      await writeFile(`${live.key}.tmp`, '-----BEGIN PRIVATE KEY-----\ntruncated\n');
      await rename(`${live.key}.tmp`, live.key);
      await waitFor(() => logs.some((l) => l.msg === 'rtmps certificate reload failed; keeping the current certificate'), 'reload failure logged', 15_000);
      const failure = logs.find((l) => l.msg === 'rtmps certificate reload failed; keeping the current certificate')!;
      expect(failure).toMatchObject({ level: 50, certPath: live.cert, keyPath: live.key });
      expect(typeof failure.reason).toBe('string');
      expect(await servedCn(tlsPort)).toBe('cert-b');
    } finally {
      await daemon.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('RTMPS files checked before they are needed', () => {
  const tlsYaml = (cert: string, key: string) => `, tls: { listen: "127.0.0.1:0", cert: ${JSON.stringify(cert)}, key: ${JSON.stringify(key)} }`;

  it('`check` refuses a certificate that is missing or does not match its key, at the line of the key to fix', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flowrelay-tls-check-'));
    try {
      const a = await selfSigned(join(dir, 'a'), 'cert-a');
      const b = await selfSigned(join(dir, 'b'), 'cert-b');
      const check = async (cert: string, key: string) => {
        // tempConfig writes the storage line first: the cert is on line 6, the key on 7.
        const cfg = await tempConfig(`rtmp:\n  listen: "127.0.0.1:0"\n  tls:\n    listen: "127.0.0.1:0"\n    cert: ${JSON.stringify(cert)}\n    key: ${JSON.stringify(key)}\nflows: []\n`);
        const result = await execFileAsync(process.execPath, [join(REPO_ROOT, 'bin/flowrelay'), 'check', cfg.file]).then(
          (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
          (err: { code: number; stdout: string; stderr: string }) => err,
        );
        await cfg.cleanup();
        return { ...result, file: cfg.file };
      };
      const missing = await check(join(dir, 'nope.crt'), a.key);
      expect(missing.code).toBe(2);
      expect(missing.stderr.trim()).toBe(`${missing.file}:6: rtmp.tls.cert: cannot read certificate ${join(dir, 'nope.crt')}: ENOENT: no such file or directory, open '${join(dir, 'nope.crt')}'`);
      const mismatched = await check(a.cert, b.key);
      expect(mismatched.code).toBe(2);
      expect(mismatched.stderr.trim()).toBe(`${mismatched.file}:7: rtmp.tls.key: certificate ${a.cert} and key ${b.key} do not load together: key values mismatch`);
      const good = await check(a.cert, a.key);
      expect(good).toMatchObject({ code: 0, stderr: '' });
      expect(good.stdout).toMatch(/ok \(0 flows\)/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a start with a mismatched pair fails naming rtmp.tls and both files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flowrelay-tls-start-'));
    try {
      const a = await selfSigned(join(dir, 'a'), 'cert-a');
      const b = await selfSigned(join(dir, 'b'), 'cert-b');
      await expect(startInProcess('flows: []\n', tlsYaml(a.cert, b.key))).rejects.toThrow(`rtmp.tls: certificate ${a.cert} and key ${b.key} do not load together: key values mismatch`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a reload naming TLS files that do not load is rejected, the running config stays; SIGHUP takes a renewed certificate the watcher did not see', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flowrelay-tls-hup-'));
    // The configured files are links into another directory (as certbot's live/ -> archive/):
    // rewriting a target in place changes nothing in the watched directory.
    const archive = await mkdtemp(join(dir, 'archive-'));
    const liveDir = await mkdtemp(join(dir, 'live-'));
    const a = await selfSigned(join(archive, 'current'), 'cert-a');
    const b = await selfSigned(join(dir, 'b'), 'cert-b');
    const live = { cert: join(liveDir, 'tls.crt'), key: join(liveDir, 'tls.key') };
    await symlink(a.cert, live.cert);
    await symlink(a.key, live.key);
    const daemon = await startInProcess(`flows:\n${flowYaml('secure')}`, tlsYaml(live.cert, live.key));
    try {
      const tlsPort = daemon.app.addresses().find((x) => x.protocol === 'rtmps')!.address.port;
      expect(await servedCn(tlsPort)).toBe('cert-a');
      const text = await readFile(daemon.configFile, 'utf8');
      await writeFile(daemon.configFile, text.replace(JSON.stringify(live.cert), JSON.stringify(join(dir, 'gone.crt'))));
      const rejected = await daemon.app.reload();
      expect(rejected.ok).toBe(false);
      expect(!rejected.ok && rejected.issues).toEqual([expect.objectContaining({ path: 'rtmp.tls.cert', line: 2, message: expect.stringContaining('cannot read certificate') })]);
      expect(daemon.app.registry.get('secure')).toBeDefined();
      await writeFile(daemon.configFile, text);
      // Renewed in place, then SIGHUP (systemctl reload): served at once, not at the next poll.
      await copyFile(b.key, a.key);
      await copyFile(b.cert, a.cert);
      expect((await daemon.app.reload()).ok).toBe(true);
      expect(await servedCn(tlsPort)).toBe('cert-b');
    } finally {
      await daemon.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
