import type { Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { WriteMerger } from '../../src/rtmp/write-merger.js';

/** A stand-in socket that records each Buffer written to it. */
function fakeSocket(): { socket: Socket; writes: Buffer[] } {
  const writes: Buffer[] = [];
  const stream = new PassThrough() as unknown as Socket;
  stream.write = ((b: Buffer) => (writes.push(b), true)) as Socket['write'];
  return { socket: stream, writes };
}

const text = (writes: Buffer[]): string[] => writes.map((b) => b.toString());

describe('WriteMerger', () => {
  it("holds writes until the tick, then writes each socket's queue in order in one write", async () => {
    const merger = new WriteMerger(20);
    const a = fakeSocket();
    const b = fakeSocket();
    merger.write(a.socket, Buffer.from('1'));
    merger.write(b.socket, Buffer.from('x'));
    merger.write(a.socket, Buffer.from('23'));
    expect(a.writes).toEqual([]);
    expect(merger.queued(a.socket)).toBe(3);
    await new Promise((r) => setTimeout(r, 40));
    expect(text(a.writes)).toEqual(['123']);
    expect(text(b.writes)).toEqual(['x']);
    expect(merger.queued(a.socket)).toBe(0);
    merger.close();
  });

  it('players queued the same shared Buffers get one concatenation between them; a different queue gets its own', () => {
    const merger = new WriteMerger(1000);
    const shared = [Buffer.from('m1'), Buffer.from('m2'), Buffer.from('m3')];
    const players = [fakeSocket(), fakeSocket(), fakeSocket()];
    const late = fakeSocket();
    for (const m of shared) for (const p of players) merger.write(p.socket, m);
    // Same first Buffer, one message fewer: must not be confused with the others.
    merger.write(late.socket, shared[0]!);
    merger.write(late.socket, shared[1]!);
    merger.flush();
    for (const p of players) expect(text(p.writes)).toEqual(['m1m2m3']);
    expect(players[1]!.writes[0]).toBe(players[0]!.writes[0]);
    expect(players[2]!.writes[0]).toBe(players[0]!.writes[0]);
    expect(text(late.writes)).toEqual(['m1m2']);
    merger.close();
  });

  it('flushes one socket on demand and forgets it; close drops the rest; destroyed sockets get nothing', () => {
    const merger = new WriteMerger(1000);
    const a = fakeSocket();
    const b = fakeSocket();
    const gone = fakeSocket();
    merger.write(a.socket, Buffer.from('1'));
    merger.write(b.socket, Buffer.from('2'));
    merger.write(gone.socket, Buffer.from('3'));
    merger.flush(a.socket);
    expect(text(a.writes)).toEqual(['1']);
    gone.socket.destroy();
    merger.flush(gone.socket);
    expect(gone.writes).toEqual([]);
    merger.close();
    expect(merger.queued(b.socket)).toBe(0);
    expect(b.writes).toEqual([]);
  });
});
