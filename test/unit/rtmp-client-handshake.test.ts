import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ClientHandshake } from '../../src/protocol/rtmp/client-handshake.js';
import {
  digestOffset,
  findClientDigest,
  findDigest,
  FLASH_PLAYER_KEY,
  FLASH_SERVER_KEY,
  HANDSHAKE_SIZE,
  ServerHandshake,
} from '../../src/protocol/rtmp/handshake.js';
import { protocolError } from '../helpers/protocol-error.js';

function hmac(key: Buffer, data: Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/** Feeds `bytes` to the client in pieces of `step` bytes; returns the final progress. */
function feedInPieces(client: ClientHandshake, bytes: Buffer, step: number): ReturnType<ClientHandshake['feed']> {
  let last: ReturnType<ClientHandshake['feed']> = { done: false };
  for (let i = 0; i < bytes.length; i += step) {
    expect(last.done).toBe(false);
    last = client.feed(bytes.subarray(i, i + step));
  }
  return last;
}

/** A plain S0S1S2 (zero version in S1, S2 echoing C1), as simple servers send it. */
function plainServerAnswer(c1: Buffer): Buffer {
  const s1 = randomBytes(HANDSHAKE_SIZE);
  s1.writeUInt32BE(0, 4);
  return Buffer.concat([Buffer.from([3]), s1, c1]);
}

describe('ClientHandshake', () => {
  it('sends C0 = 3 and a C1 signed like ffmpeg: version 9.0.124.2, scheme 0 digest with the Flash Player key', () => {
    const c0c1 = new ClientHandshake(() => 0x01020304).start();
    expect(c0c1.length).toBe(1 + HANDSHAKE_SIZE);
    expect(c0c1[0]).toBe(3);
    const c1 = c0c1.subarray(1);
    expect(c1.readUInt32BE(0)).toBe(0x01020304);
    expect([...c1.subarray(4, 8)]).toEqual([9, 0, 124, 2]);
    const found = findClientDigest(c1);
    expect(found?.scheme).toBe(0);
    expect(found?.digest.equals(c1.subarray(digestOffset(c1, 0), digestOffset(c1, 0) + 32))).toBe(true);
  });

  it('completes the digest handshake with our ServerHandshake; C2 is signed with the key derived from the server digest', () => {
    const client = new ClientHandshake();
    const server = new ServerHandshake(() => 1000);
    const first = server.feed(client.start());
    expect(first.done).toBe(false);
    expect(server.digest).toBe(true);
    const s0s1s2 = first.output!;
    expect(s0s1s2.length).toBe(1 + 2 * HANDSHAKE_SIZE);

    // Byte by byte for the first few, then the rest with trailing chunk bytes: the client must split exactly.
    const trailing = Buffer.from('first chunk bytes');
    let progress = feedInPieces(client, s0s1s2.subarray(0, 7), 1);
    expect(progress.done).toBe(false);
    progress = client.feed(Buffer.concat([s0s1s2.subarray(7), trailing]));
    expect(progress.done).toBe(true);
    if (!progress.done) return;
    expect(progress.rest.equals(trailing)).toBe(true);
    expect(client.digest).toBe(true);

    const c2 = progress.output;
    expect(c2.length).toBe(HANDSHAKE_SIZE);
    const s1 = s0s1s2.subarray(1, 1 + HANDSHAKE_SIZE);
    const serverDigest = findDigest(s1, FLASH_SERVER_KEY.subarray(0, 36))!.digest;
    const key = hmac(FLASH_PLAYER_KEY, serverDigest);
    expect(c2.subarray(HANDSHAKE_SIZE - 32).equals(hmac(key, c2.subarray(0, HANDSHAKE_SIZE - 32)))).toBe(true);

    const serverRest = Buffer.from([0x02, 0x00]);
    const done = server.feed(Buffer.concat([c2, serverRest]));
    expect(done.done).toBe(true);
    if (done.done) expect(done.rest.equals(serverRest)).toBe(true);
  });

  it('echoes S1 as C2 when the server answers with the plain handshake', () => {
    const client = new ClientHandshake();
    const c1 = client.start().subarray(1);
    const answer = plainServerAnswer(c1);
    const progress = feedInPieces(client, answer, 500);
    expect(progress.done).toBe(true);
    if (!progress.done) return;
    expect(progress.rest.length).toBe(0);
    expect(client.digest).toBe(false);
    expect(progress.output.equals(answer.subarray(1, 1 + HANDSHAKE_SIZE))).toBe(true);
  });

  it('completes the plain path against our ServerHandshake when C1 carries no valid digest', () => {
    // A server answers plainly when C1's digest does not verify; emulate by corrupting C1's digest.
    const client = new ClientHandshake();
    const c0c1 = client.start();
    const c1 = c0c1.subarray(1);
    for (const scheme of [0, 1] as const) c1[digestOffset(c1, scheme)]! ^= 0xff;
    const server = new ServerHandshake();
    const first = server.feed(c0c1);
    expect(server.digest).toBe(false);
    const progress = client.feed(first.output!);
    expect(progress.done).toBe(true);
    if (!progress.done) return;
    expect(client.digest).toBe(false);
    expect(progress.output.equals(first.output!.subarray(1, 1 + HANDSHAKE_SIZE))).toBe(true);
    const done = server.feed(progress.output);
    expect(done).toEqual({ done: true, rest: Buffer.alloc(0) });
  });

  it('treats an S1 with a non-zero version but no valid digest as plain', () => {
    const client = new ClientHandshake();
    const c1 = client.start().subarray(1);
    const answer = plainServerAnswer(c1);
    answer.writeUInt32BE(0x04050001, 1 + 4);
    const progress = client.feed(answer);
    expect(progress.done && progress.output.equals(answer.subarray(1, 1 + HANDSHAKE_SIZE))).toBe(true);
    expect(client.digest).toBe(false);
  });

  it('refuses an S0 other than 3 as soon as it arrives', () => {
    const client = new ClientHandshake();
    client.start();
    const err = protocolError(() => client.feed(Buffer.from([6])));
    expect(err.code).toBe('RTMP_HANDSHAKE');
    expect(err.message).toMatch(/version byte 6/);
  });

  it('refuses bytes before start and after completion', () => {
    expect(protocolError(() => new ClientHandshake().feed(Buffer.from([3]))).code).toBe('RTMP_HANDSHAKE');
    const client = new ClientHandshake();
    client.start();
    expect(client.feed(plainServerAnswer(Buffer.alloc(HANDSHAKE_SIZE))).done).toBe(true);
    expect(protocolError(() => client.feed(Buffer.from([0]))).code).toBe('RTMP_HANDSHAKE');
    expect(protocolError(() => client.start()).code).toBe('RTMP_HANDSHAKE');
  });
});
