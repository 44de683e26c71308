import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * A self-signed certificate for 127.0.0.1 (CN and IP subjectAltName), valid for a day, in
 * a directory of its own: what a private CA's certificate is to a client that trusts it
 * with `tls.ca`, and an untrusted one to a client checking the system CAs.
 */
export async function selfSignedCert(prefix: string): Promise<{ dir: string; cert: string; key: string }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const cert = join(dir, 'tls.crt');
  const key = join(dir, 'tls.key');
  await execFileAsync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
  return { dir, cert, key };
}

/** The rtmp section's `tls` for an RTMPS listener on a free loopback port (startInProcess's rtmpExtra). */
export const rtmpsListener = ({ cert, key }: { cert: string; key: string }): string => `, tls: { listen: "127.0.0.1:0", cert: ${JSON.stringify(cert)}, key: ${JSON.stringify(key)} }`;
