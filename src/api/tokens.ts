import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A new API token: 32 random bytes, base64url, with a prefix that makes leaked tokens easy to grep for. */
export function newApiToken(): string {
  return `frt_${randomBytes(32).toString('base64url')}`;
}

/** What the config keeps of a token: its SHA-256, hex. */
export function hashApiToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export type TokenScope = 'read' | 'write';

export interface KnownToken {
  name: string;
  sha256: string;
  scope: TokenScope;
}

export type TokenCheck = { ok: true; name: string; scope: TokenScope } | { ok: false; code: 'unauthorized' | 'invalid_token'; message: string };

/**
 * Checks `Authorization: Bearer <token>` against the known hashes. Hashing first means
 * the comparison never touches the token itself; timingSafeEqual keeps the hash
 * comparison constant-time anyway.
 */
export class TokenVerifier {
  private readonly known: { name: string; digest: Buffer; scope: TokenScope }[];

  constructor(tokens: readonly KnownToken[]) {
    this.known = tokens.map((t) => ({ name: t.name, digest: Buffer.from(t.sha256, 'hex'), scope: t.scope }));
  }

  check(authorization: string | undefined): TokenCheck {
    if (!authorization) return { ok: false, code: 'unauthorized', message: 'an Authorization: Bearer <token> header is required' };
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!m) return { ok: false, code: 'unauthorized', message: 'the Authorization header must be "Bearer <token>"' };
    const digest = createHash('sha256').update(m[1]!, 'utf8').digest();
    for (const t of this.known) {
      if (timingSafeEqual(digest, t.digest)) return { ok: true, name: t.name, scope: t.scope };
    }
    return { ok: false, code: 'invalid_token', message: 'the token is not valid' };
  }
}
