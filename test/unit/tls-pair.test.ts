import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TlsPairError, validateTlsPair } from '../../src/rtmp/tls-pair.js';

const dir = mkdtempSync(join(tmpdir(), 'flowrelay-tls-pair-'));
const files = { certPath: join(dir, 'tls.crt'), keyPath: join(dir, 'tls.key') };
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', files.keyPath, '-out', files.certPath, '-days', '1', '-subj', '/CN=pair'], { stdio: 'ignore' });
const pair = { cert: readFileSync(files.certPath), key: readFileSync(files.keyPath) };

describe('validateTlsPair', () => {
  it('loads a good pair with its subject, and says when it has expired', () => {
    expect(validateTlsPair(pair, files)).toMatchObject({ subject: 'CN=pair', expired: false });
    expect(validateTlsPair(pair, files, Date.now() + 3 * 86_400_000).expired).toBe(true);
  });

  it('names both files and gives OpenSSL\'s reason without its error code', () => {
    const err = (() => {
      try {
        validateTlsPair({ cert: Buffer.from('junk'), key: pair.key }, files);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(TlsPairError);
    expect(err).toMatchObject({ field: 'pair', reason: 'no start line', message: `certificate ${files.certPath} and key ${files.keyPath} do not load together: no start line` });
  });
});
