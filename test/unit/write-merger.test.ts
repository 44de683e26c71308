import { PassThrough } from 'node:stream';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { WriteMerger } from '../../src/rtmp/write-merger.js';

/** A stand-in socket that records each write and each cork/uncork. */
function fakeSocket(): { socket: Socket; events: string[] } {
  const events: string[] = [];
  const stream = new PassThrough() as unknown as Socket & { destroyed: boolean };
  stream.write = ((b: Buffer) => (events.push(`write ${b.toString()}`), true)) as Socket['write'];
  stream.cork = () => void events.push('cork');
  stream.uncork = () => void events.push('uncork');
  return { socket: stream, events };
}

describe('WriteMerger', () => {
  it('holds writes until the tick, then writes each socket\'s queue in order in one corked batch', async () => {
    const merger = new WriteMerger(20);
    const a = fakeSocket();
    const b = fakeSocket();
    merger.write(a.socket, Buffer.from('1'));
    merger.write(b.socket, Buffer.from('x'));
    merger.write(a.socket, Buffer.from('2'));
    expect(a.events).toEqual([]);
    expect(merger.queued(a.socket)).toBe(2);
    await new Promise((r) => setTimeout(r, 40));
    expect(a.events).toEqual(['cork', 'write 1', 'write 2', 'uncork']);
    expect(b.events).toEqual(['cork', 'write x', 'uncork']);
    expect(merger.queued(a.socket)).toBe(0);
    merger.close();
  });

  it('flushes one socket on demand and forgets it; close drops the rest', () => {
    const merger = new WriteMerger(1000);
    const a = fakeSocket();
    const b = fakeSocket();
    merger.write(a.socket, Buffer.from('1'));
    merger.write(b.socket, Buffer.from('2'));
    merger.flush(a.socket);
    expect(a.events).toEqual(['cork', 'write 1', 'uncork']);
    merger.close();
    expect(merger.queued(b.socket)).toBe(0);
    expect(b.events).toEqual([]);
  });
});
