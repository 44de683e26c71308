import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { SrtConnection } from '../../src/srt/connection.js';
import { demuxInto } from '../../src/srt/ts-input.js';

/** One second of H.264 + AAC + a second audio track the relay leaves out (MP2 or AC-3). */
function tsWithExtraTrack(dir: string, codec: 'mp2' | 'ac3'): Buffer {
  const file = join(dir, `${codec}.ts`);
  execFileSync('ffmpeg', [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25', '-f', 'lavfi', '-i', 'sine=sample_rate=48000',
    '-t', '1', '-map', '0:v', '-map', '1:a', '-map', '1:a', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a:0', 'aac', '-c:a:1', codec, '-f', 'mpegts', '-y', file,
  ]);
  return readFileSync(file);
}

describe('demuxInto', () => {
  it('warns of streams it leaves out, but a sender that keeps changing its PMT gets one warning, not one per change', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flowrelay-ts-input-'));
    const a = tsWithExtraTrack(dir, 'mp2');
    const b = tsWithExtraTrack(dir, 'ac3');
    const logs: Record<string, unknown>[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
    const connection = new EventEmitter() as unknown as SrtConnection;
    let frames = 0;
    demuxInto(connection, { media: () => void (frames += 1), data: () => undefined }, logger);
    for (let i = 0; i < 10; i++) connection.emit('data', i % 2 === 0 ? a : b);
    const warnings = logs.filter((l) => String(l.msg).startsWith('MPEG-TS streams not relayed'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.streams).toEqual([expect.objectContaining({ streamType: '0x03' })]);
    expect(frames).toBeGreaterThan(200);
  });
});
