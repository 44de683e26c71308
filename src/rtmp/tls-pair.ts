import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';

/** Where a certificate chain and its key are read from. */
export interface TlsFiles {
  certPath: string;
  keyPath: string;
}

export interface TlsPair {
  cert: Buffer;
  key: Buffer;
}

/** A pair that loads, with what operators check on a certificate. */
export interface LoadedTlsPair extends TlsPair {
  subject: string;
  validTo: string;
  fingerprint256: string;
  expired: boolean;
}

/** Why `rtmp.tls` cannot serve: which key of the config is at fault, and the reason in words. */
export class TlsPairError extends Error {
  constructor(
    /** The config key to point at: `cert`, `key`, or the pair as a whole. */
    readonly field: 'cert' | 'key' | 'pair',
    message: string,
    /** OpenSSL's reason, e.g. "key values mismatch", when it gave one. */
    readonly reason?: string,
  ) {
    super(message);
    this.name = 'TlsPairError';
  }
}

/**
 * Checks that a certificate chain and key make a TLS context (both PEM, the key matches
 * the certificate, the key is not encrypted). Throws TlsPairError naming both files; the
 * listener is never touched with a pair that does not load.
 */
export function validateTlsPair(pair: TlsPair, files: TlsFiles, now = Date.now()): LoadedTlsPair {
  try {
    createSecureContext({ cert: pair.cert, key: pair.key });
  } catch (err) {
    const reason = describeTlsError(err);
    throw new TlsPairError('pair', `certificate ${files.certPath} and key ${files.keyPath} do not load together: ${reason}`, reason);
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(pair.cert);
  } catch (err) {
    const reason = describeTlsError(err);
    throw new TlsPairError('cert', `certificate ${files.certPath} cannot be read: ${reason}`, reason);
  }
  return { ...pair, subject: x509.subject, validTo: x509.validTo, fingerprint256: x509.fingerprint256, expired: Date.parse(x509.validTo) < now };
}

/** Reads both files and validates them (see validateTlsPair). */
export async function loadTlsPair(files: TlsFiles, now = Date.now()): Promise<LoadedTlsPair> {
  const read = (field: 'cert' | 'key', path: string) =>
    readFile(path).catch((err: Error) => {
      throw new TlsPairError(field, `cannot read ${field === 'cert' ? 'certificate' : 'key'} ${path}: ${err.message}`);
    });
  const [cert, key] = await Promise.all([read('cert', files.certPath), read('key', files.keyPath)]);
  return validateTlsPair({ cert, key }, files, now);
}

/** OpenSSL's reason ("key values mismatch", "no start line") without its error-code prefix. */
function describeTlsError(err: unknown): string {
  const e = err as { reason?: unknown; message?: string };
  if (typeof e.reason === 'string' && e.reason !== '') return e.reason;
  return (e.message ?? String(err)).replace(/^error:[0-9A-F]+:[^:]*:[^:]*:/i, '');
}
