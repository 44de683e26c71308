import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  buildServerResponse,
  digestOffset,
  findClientDigest,
  FLASH_PLAYER_KEY,
  FLASH_SERVER_KEY,
  HANDSHAKE_SIZE,
  ServerHandshake,
  type HandshakeProgress,
} from '../../src/protocol/rtmp/handshake.js';
import { protocolError } from '../helpers/protocol-error.js';

/** Deterministic bytes (LCG) so a failing case reproduces. */
function bytes(length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

function hmac(key: Buffer, ...parts: Buffer[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** HMAC-SHA256 of a 1536-byte block with the 32 digest bytes at `offset` left out. */
function digestOver(block: Buffer, offset: number, key: Buffer): Buffer {
  return hmac(key, block.subarray(0, offset), block.subarray(offset + 32));
}

/** A plain C1: time, four zero bytes, random. */
function plainC1(seed: number, time = 0x01020304): Buffer {
  const c1 = bytes(HANDSHAKE_SIZE, seed);
  c1.writeUInt32BE(time, 0);
  c1.writeUInt32BE(0, 4);
  return c1;
}

/** A C1 built the way ffmpeg/librtmp build it: version 9.0.124.2 and a Flash Player digest. */
function digestC1(seed: number, scheme: 0 | 1): Buffer {
  const c1 = bytes(HANDSHAKE_SIZE, seed);
  c1.writeUInt32BE(0, 0);
  Buffer.from([9, 0, 124, 2]).copy(c1, 4);
  const offset = digestOffset(c1, scheme);
  digestOver(c1, offset, FLASH_PLAYER_KEY.subarray(0, 30)).copy(c1, offset);
  return c1;
}

const C0 = Buffer.from([3]);

function run(hs: ServerHandshake, ...pieces: Buffer[]): { outputs: Buffer[]; last: HandshakeProgress } {
  const outputs: Buffer[] = [];
  let last: HandshakeProgress = { done: false };
  for (const piece of pieces) {
    last = hs.feed(piece);
    if (last.output) outputs.push(last.output);
  }
  return { outputs, last };
}

describe('key constants', () => {
  it('are the published Adobe keys', () => {
    expect(FLASH_PLAYER_KEY.length).toBe(62);
    expect(FLASH_SERVER_KEY.length).toBe(68);
    expect(FLASH_PLAYER_KEY.subarray(0, 30).toString('ascii')).toBe('Genuine Adobe Flash Player 001');
    expect(FLASH_SERVER_KEY.subarray(0, 36).toString('ascii')).toBe('Genuine Adobe Flash Media Server 001');
    expect(FLASH_SERVER_KEY.subarray(36).toString('hex')).toBe(
      'f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae',
    );
    expect(FLASH_PLAYER_KEY.subarray(30).equals(FLASH_SERVER_KEY.subarray(36))).toBe(true);
  });
});

describe('digestOffset', () => {
  it('scheme 0: sum of bytes 8..11 mod 728, plus 12', () => {
    const block = Buffer.alloc(HANDSHAKE_SIZE);
    expect(digestOffset(block, 0)).toBe(12);
    block.set([255, 255, 255, 255], 8); // 1020 % 728 = 292
    expect(digestOffset(block, 0)).toBe(292 + 12);
    block.set([100, 200, 50, 1], 8); // 351
    expect(digestOffset(block, 0)).toBe(351 + 12);
  });

  it('scheme 1: sum of bytes 772..775 mod 728, plus 776', () => {
    const block = Buffer.alloc(HANDSHAKE_SIZE);
    expect(digestOffset(block, 1)).toBe(776);
    block.set([255, 255, 255, 255], 772);
    expect(digestOffset(block, 1)).toBe(292 + 776);
    block.set([182, 182, 182, 182], 772); // 728 -> 0
    expect(digestOffset(block, 1)).toBe(776);
  });

  it('keeps the digest inside its half of the block for every byte sum', () => {
    for (let sum = 0; sum <= 1020; sum++) {
      const block = Buffer.alloc(HANDSHAKE_SIZE);
      const parts = [Math.min(sum, 255), Math.min(Math.max(sum - 255, 0), 255), Math.min(Math.max(sum - 510, 0), 255), Math.max(sum - 765, 0)];
      block.set(parts, 8);
      block.set(parts, 772);
      const o0 = digestOffset(block, 0);
      const o1 = digestOffset(block, 1);
      expect(o0).toBeGreaterThanOrEqual(12);
      expect(o0 + 32).toBeLessThanOrEqual(772);
      expect(o1).toBeGreaterThanOrEqual(776);
      expect(o1 + 32).toBeLessThanOrEqual(HANDSHAKE_SIZE);
    }
  });
});

describe('findClientDigest', () => {
  it.each([0, 1] as const)('finds a scheme %i digest', (scheme) => {
    for (let seed = 1; seed <= 20; seed++) {
      const c1 = digestC1(seed * 7919 + scheme, scheme);
      const found = findClientDigest(c1);
      expect(found?.scheme).toBe(scheme);
      const offset = digestOffset(c1, scheme);
      expect(found?.digest.equals(c1.subarray(offset, offset + 32))).toBe(true);
    }
  });

  it('finds nothing in a random block or when one digest byte is wrong', () => {
    expect(findClientDigest(bytes(HANDSHAKE_SIZE, 5))).toBeUndefined();
    const c1 = digestC1(77, 0);
    const offset = digestOffset(c1, 0);
    c1[offset + 31] = c1[offset + 31]! ^ 1;
    expect(findClientDigest(c1)).toBeUndefined();
  });

  it('finds nothing when the digest was made with the server key', () => {
    const c1 = bytes(HANDSHAKE_SIZE, 8);
    const offset = digestOffset(c1, 0);
    digestOver(c1, offset, FLASH_SERVER_KEY.subarray(0, 36)).copy(c1, offset);
    expect(findClientDigest(c1)).toBeUndefined();
  });
});

describe('plain handshake', () => {
  it('answers a zero-version C1 with S0 = 3, a zero-version S1 and an S2 echoing C1', () => {
    const c1 = plainC1(1);
    const hs = new ServerHandshake(() => 123456);
    const progress = hs.feed(Buffer.concat([C0, c1]));
    expect(progress.done).toBe(false);
    const out = progress.output!;
    expect(out.length).toBe(1 + 2 * HANDSHAKE_SIZE);
    expect(out[0]).toBe(3);
    const s1 = out.subarray(1, 1 + HANDSHAKE_SIZE);
    const s2 = out.subarray(1 + HANDSHAKE_SIZE);
    expect(s1.readUInt32BE(0)).toBe(123456);
    expect(s1.readUInt32BE(4)).toBe(0);
    // S2: C1's time, our time, C1's random bytes.
    expect(s2.readUInt32BE(0)).toBe(0x01020304);
    expect(s2.readUInt32BE(4)).toBe(123456);
    expect(s2.subarray(8).equals(c1.subarray(8))).toBe(true);
    expect(hs.digest).toBe(false);
  });

  it('falls back to plain when C1 has a version but no valid digest', () => {
    const c1 = bytes(HANDSHAKE_SIZE, 42);
    Buffer.from([9, 0, 124, 2]).copy(c1, 4);
    const response = buildServerResponse(c1, 99);
    expect(response.digest).toBe(false);
    expect(response.s1.readUInt32BE(4)).toBe(0);
    expect(response.s2.subarray(8).equals(c1.subarray(8))).toBe(true);
  });

  it('does not look for a digest when the version is zero, even if one is present', () => {
    const c1 = digestC1(3, 0);
    c1.writeUInt32BE(0, 4);
    // Re-sign with the version zeroed so the digest is valid for this exact block.
    const offset = digestOffset(c1, 0);
    digestOver(c1, offset, FLASH_PLAYER_KEY.subarray(0, 30)).copy(c1, offset);
    expect(findClientDigest(c1)?.scheme).toBe(0);
    expect(buildServerResponse(c1, 1).digest).toBe(false);
  });

  it('writes the time modulo 2^32', () => {
    const { s1 } = buildServerResponse(plainC1(2), 0x1_0000_0005);
    expect(s1.readUInt32BE(0)).toBe(5);
  });

  it('does not modify C1', () => {
    const c1 = plainC1(3);
    const copy = Buffer.from(c1);
    buildServerResponse(c1, 1);
    expect(c1.equals(copy)).toBe(true);
  });
});

describe('digest handshake', () => {
  it.each([0, 1] as const)('answers a scheme %i C1 with a signed S1 and an S2 keyed by the client digest', (scheme) => {
    for (let seed = 1; seed <= 10; seed++) {
      const c1 = digestC1(seed * 104729 + scheme, scheme);
      const clientOffset = digestOffset(c1, scheme);
      const clientDigest = c1.subarray(clientOffset, clientOffset + 32);

      const hs = new ServerHandshake(() => 5000);
      const { last } = run(hs, Buffer.concat([C0, c1]));
      expect(hs.digest).toBe(true);
      const out = last.output!;
      expect(out[0]).toBe(3);
      const s1 = out.subarray(1, 1 + HANDSHAKE_SIZE);
      const s2 = out.subarray(1 + HANDSHAKE_SIZE);

      expect(s1.readUInt32BE(0)).toBe(5000);
      expect(s1.readUInt32BE(4)).not.toBe(0); // a server version, which makes ffmpeg validate S1
      const s1Offset = digestOffset(s1, scheme);
      const s1Digest = s1.subarray(s1Offset, s1Offset + 32);
      expect(s1Digest.equals(digestOver(s1, s1Offset, FLASH_SERVER_KEY.subarray(0, 36)))).toBe(true);

      const s2Key = hmac(FLASH_SERVER_KEY, clientDigest);
      expect(s2.subarray(HANDSHAKE_SIZE - 32).equals(hmac(s2Key, s2.subarray(0, HANDSHAKE_SIZE - 32)))).toBe(true);
      // S2 is not an echo of C1 in the digest form.
      expect(s2.subarray(8).equals(c1.subarray(8))).toBe(false);
    }
  });

  it('signs S1 with the server key, not the player key', () => {
    const c1 = digestC1(11, 0);
    const { s1 } = buildServerResponse(c1, 0);
    const offset = digestOffset(s1, 0);
    expect(s1.subarray(offset, offset + 32).equals(digestOver(s1, offset, FLASH_PLAYER_KEY.subarray(0, 30)))).toBe(false);
    expect(s1.subarray(offset, offset + 32).equals(digestOver(s1, offset, FLASH_SERVER_KEY.subarray(0, 36)))).toBe(true);
  });

  it('gives different S1/S2 on every call (fresh randomness)', () => {
    const c1 = digestC1(12, 1);
    const a = buildServerResponse(c1, 0);
    const b = buildServerResponse(c1, 0);
    expect(a.s1.equals(b.s1)).toBe(false);
    expect(a.s2.equals(b.s2)).toBe(false);
  });
});

describe('ServerHandshake incremental feeding', () => {
  it('waits for the whole C0C1 however it is split, then answers once', () => {
    const c1 = plainC1(21);
    const c0c1 = Buffer.concat([C0, c1]);
    for (const cuts of [[1], [1, 2], [100, 1000, 1536], [1536]]) {
      const hs = new ServerHandshake(() => 1);
      const pieces: Buffer[] = [];
      let prev = 0;
      for (const cut of cuts) {
        pieces.push(c0c1.subarray(prev, cut));
        prev = cut;
      }
      pieces.push(c0c1.subarray(prev));
      const results = pieces.map((p) => hs.feed(p));
      expect(results.slice(0, -1).every((r) => !r.done && r.output === undefined)).toBe(true);
      const last = results[results.length - 1]!;
      expect(last.done).toBe(false);
      expect(last.output?.length).toBe(1 + 2 * HANDSHAKE_SIZE);
      expect(last.output!.subarray(1 + HANDSHAKE_SIZE + 8).equals(c1.subarray(8))).toBe(true);
    }
  });

  it('feeds byte by byte through C0C1 and C2', () => {
    const hs = new ServerHandshake(() => 1);
    const all = Buffer.concat([C0, plainC1(22), bytes(HANDSHAKE_SIZE, 23)]);
    const outputs: Buffer[] = [];
    let doneAt = -1;
    for (let i = 0; i < all.length; i++) {
      const r = hs.feed(all.subarray(i, i + 1));
      if (r.output) outputs.push(r.output);
      if (r.done) {
        doneAt = i;
        expect(r.rest.length).toBe(0);
      }
    }
    expect(outputs).toHaveLength(1);
    expect(doneAt).toBe(all.length - 1);
  });

  it('reports done with the bytes after C2 in rest (C2 plus first chunks in one read)', () => {
    const hs = new ServerHandshake(() => 1);
    expect(hs.feed(Buffer.concat([C0, plainC1(31)])).done).toBe(false);
    const firstChunks = Buffer.from('030000000000ff14000000000200', 'hex');
    const r = hs.feed(Buffer.concat([bytes(HANDSHAKE_SIZE, 32), firstChunks]));
    expect(r.done).toBe(true);
    expect(r.output).toBeUndefined();
    if (!r.done) throw new Error('unreachable');
    expect(r.rest.equals(firstChunks)).toBe(true);
  });

  it('handles C2 split in pieces with the trailing bytes in the last piece', () => {
    const hs = new ServerHandshake(() => 1);
    hs.feed(Buffer.concat([C0, plainC1(33)]));
    const c2 = bytes(HANDSHAKE_SIZE, 34);
    const extra = Buffer.from([0xaa, 0xbb, 0xcc]);
    expect(hs.feed(c2.subarray(0, 700)).done).toBe(false);
    const r = hs.feed(Buffer.concat([c2.subarray(700), extra]));
    if (!r.done) throw new Error('expected done');
    expect(r.rest.equals(extra)).toBe(true);
  });

  it('handles C0C1C2 and the first chunks all in one read', () => {
    const hs = new ServerHandshake(() => 1);
    const extra = Buffer.from('hello');
    const r = hs.feed(Buffer.concat([C0, digestC1(35, 0), bytes(HANDSHAKE_SIZE, 36), extra]));
    if (!r.done) throw new Error('expected done');
    expect(r.output?.length).toBe(1 + 2 * HANDSHAKE_SIZE);
    expect(r.rest.equals(extra)).toBe(true);
    expect(hs.digest).toBe(true);
  });

  it('C0C1 with part of C2 in the same read answers and keeps the C2 bytes', () => {
    const hs = new ServerHandshake(() => 1);
    const c2 = bytes(HANDSHAKE_SIZE, 37);
    const r1 = hs.feed(Buffer.concat([C0, plainC1(38), c2.subarray(0, 10)]));
    expect(r1.done).toBe(false);
    expect(r1.output?.length).toBe(1 + 2 * HANDSHAKE_SIZE);
    const r2 = hs.feed(c2.subarray(10));
    if (!r2.done) throw new Error('expected done');
    expect(r2.rest.length).toBe(0);
  });

  it('an empty read changes nothing', () => {
    const hs = new ServerHandshake(() => 1);
    expect(hs.feed(Buffer.alloc(0))).toEqual({ done: false });
    expect(hs.feed(Buffer.concat([C0, plainC1(39)])).output).toBeDefined();
  });

  it('refuses input after completion', () => {
    const hs = new ServerHandshake(() => 1);
    hs.feed(Buffer.concat([C0, plainC1(40), bytes(HANDSHAKE_SIZE, 41)]));
    expect(protocolError(() => hs.feed(Buffer.from([1]))).code).toBe('RTMP_HANDSHAKE');
  });
});

describe('ServerHandshake version byte', () => {
  it.each([
    [6, 'RTMPE'],
    [0x47, "'G' of an HTTP GET"],
    [0x16, 'TLS ClientHello on the plain port'],
    [0, 'zero'],
    [31, 'unknown'],
  ])('rejects version byte %i (%s) as soon as it arrives', (version) => {
    const hs = new ServerHandshake(() => 1);
    const err = protocolError(() => hs.feed(Buffer.from([version])));
    expect(err.code).toBe('RTMP_HANDSHAKE');
  });

  it('rejects an HTTP request line', () => {
    const hs = new ServerHandshake(() => 1);
    expect(protocolError(() => hs.feed(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))).code).toBe('RTMP_HANDSHAKE');
  });
});
