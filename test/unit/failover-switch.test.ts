import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FailoverSwitch } from '../../src/core/failover-switch.js';
import type { FlowEvent } from '../../src/core/flow-events.js';
import type { MediaMessage } from '../../src/core/media.js';
import { StreamHub, type HubReader, type SourceHandle } from '../../src/core/stream-hub.js';
import { FakeClock } from '../helpers/fake-clock.js';

/** FLV tag bodies, legacy AVC/AAC (E.4.2, E.4.3), each carrying a byte naming its encoder. */
const tag = {
  videoHeader: (enc: number) => Buffer.from([0x17, 0x00, 0, 0, 0, 0x01, 0x64, 0x00, 0x1f, 0xff, 0xe0, enc]),
  keyframe: (enc: number) => Buffer.from([0x17, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x65, enc]),
  frame: (enc: number) => Buffer.from([0x27, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x41, enc]),
  audioHeader: (enc: number) => Buffer.from([0xaf, 0x00, 0x12, 0x10, enc]),
};
const encoderOf = (m: MediaMessage) => m.payload.at(-1);

class Reader implements HubReader {
  readonly got: MediaMessage[] = [];
  started = 0;
  ended = 0;
  deliver(m: MediaMessage): void {
    this.got.push(m);
  }
  sourceStarted(): void {
    this.started += 1;
  }
  sourceEnded(): void {
    this.ended += 1;
  }
  hubClosed(): void {}
}

const owner = () => ({ kicked: [] as string[], kick(reason: string) { this.kicked.push(reason); } });

function setup(revert = false) {
  const clock = new FakeClock();
  const hub = new StreamHub();
  const events: FlowEvent[] = [];
  const sw = new FailoverSwitch('f', hub, ['main', 'backup'], { afterMs: 1000, revert, revertAfterMs: 3000 }, clock, (e) => events.push(e), pino({ level: 'silent' }));
  const reader = new Reader();
  hub.addReader(reader);
  return { clock, hub, events, sw, reader };
}

/** `frames` rounds of one frame from each encoder, 40 ms of the switch's clock apart. */
function run(clock: FakeClock, frames: number, ...encoders: { frame(): void }[]): void {
  for (let i = 0; i < frames; i++) {
    for (const e of encoders) e.frame();
    clock.advance(40);
  }
}

/** An encoder: headers once, then a keyframe every `gop` frames, one frame per 40 ms of its own time. */
function encoder(handle: SourceHandle, id: number, gop = 25) {
  let n = 0;
  let ts = 1000 * id; // each encoder has its own clock
  handle.push('video', ts, tag.videoHeader(id));
  handle.push('audio', ts, tag.audioHeader(id));
  return {
    frame(): void {
      handle.push('video', ts, n % gop === 0 ? tag.keyframe(id) : tag.frame(id));
      n += 1;
      ts += 40;
    },
  };
}

describe('failover switch', () => {
  it('forwards the primary; a stalled primary is replaced at the backup\'s next keyframe, headers first, timestamps moving on', () => {
    const { clock, sw, reader, events } = setup();
    const primary = encoder(sw.port('main').attachSource(owner())!, 1);
    const backup = encoder(sw.port('backup').attachSource(owner())!, 2, 10);
    run(clock, 30, primary, backup);
    expect(sw.report().active).toBe('main');
    expect(reader.got.every((m) => encoderOf(m) === 1)).toBe(true);
    const lastBefore = reader.got.at(-1)!.timestamp;
    // The primary goes quiet; the backup keeps going. Nothing switches before afterMs...
    run(clock, 20, backup);
    expect(sw.report().active).toBe('main');
    // ...then the switch waits for the backup's keyframe (every 10 frames).
    run(clock, 15, backup);
    expect(sw.report().active).toBe('backup');
    const after = reader.got.filter((m) => encoderOf(m) === 2);
    expect(after.slice(0, 3).map((m) => [m.kind, m.isSequenceHeader, m.isKeyframe])).toEqual([
      ['video', true, false],
      ['audio', true, false],
      ['video', false, true],
    ]);
    expect(after[0]!.timestamp).toBeGreaterThan(lastBefore);
    const ts = reader.got.filter((m) => m.kind === 'video').map((m) => m.timestamp);
    expect(ts).toEqual([...ts].sort((a, b) => a - b));
    expect(reader.ended).toBe(0);
    expect(events).toEqual([{ type: 'input.failover', flowId: 'f', from: 'main', to: 'backup', reason: 'stalled' }]);
  });

  it('drops the new input\'s audio stamped before the keyframe it is spliced in at (MPEG-TS delivers audio late), so audio keeps moving forward', () => {
    const { clock, sw, reader } = setup();
    const primarySource = sw.port('main').attachSource(owner())!;
    const primary = encoder(primarySource, 1);
    const backupSource = sw.port('backup').attachSource(owner())!;
    backupSource.push('video', 0, tag.videoHeader(2));
    backupSource.push('audio', 0, tag.audioHeader(2));
    const aac = (enc: number) => Buffer.from([0xaf, 0x01, 0x21, enc]);
    for (let i = 0; i < 10; i++) {
      primary.frame();
      primarySource.push('audio', 1000 + i * 40, aac(1));
      clock.advance(40);
    }
    // The primary stalls; the backup sends video with its audio 200 ms behind, as an MPEG-TS muxer does.
    for (let t = 0; t < 3000; t += 40) {
      backupSource.push('video', t, t % 1000 === 0 ? tag.keyframe(2) : tag.frame(2));
      if (t >= 200) backupSource.push('audio', t - 200, aac(2));
      clock.advance(40);
    }
    expect(sw.report().active).toBe('backup');
    const backupAudio = reader.got.filter((m) => m.kind === 'audio' && !m.isSequenceHeader && encoderOf(m) === 2);
    expect(backupAudio.length).toBeGreaterThan(10);
    const audioTimes = reader.got.filter((m) => m.kind === 'audio' && !m.isSequenceHeader).map((m) => m.timestamp);
    // Every audio frame after the switch has a time of its own, later than the one before.
    expect(audioTimes.every((t, i) => i === 0 || t > audioTimes[i - 1]!)).toBe(true);
  });

  it('encoders started together: a backup that came first by a few ms gives way to the primary at its keyframe, without revert', () => {
    const { clock, sw, reader, events } = setup(false);
    const backup = encoder(sw.port('backup').attachSource(owner())!, 2);
    backup.frame();
    clock.advance(8);
    const primary = encoder(sw.port('main').attachSource(owner())!, 1);
    run(clock, 10, primary, backup);
    expect(sw.report()).toMatchObject({ active: 'main', switches: 1 });
    expect(encoderOf(reader.got.at(-1)!)).toBe(1);
    expect(events).toEqual([{ type: 'input.revert', flowId: 'f', from: 'backup', to: 'main', reason: 'revert' }]);
  });

  it('a primary that starts after the backup has run for afterMs does not take over without revert', () => {
    const { clock, sw } = setup(false);
    const backup = encoder(sw.port('backup').attachSource(owner())!, 2);
    run(clock, 30, backup);
    const primary = encoder(sw.port('main').attachSource(owner())!, 1);
    run(clock, 100, primary, backup);
    expect(sw.report()).toMatchObject({ active: 'backup', switches: 0 });
  });

  it('a primary that recovers before the backup\'s keyframe keeps its place', () => {
    const { clock, sw } = setup();
    const primary = encoder(sw.port('main').attachSource(owner())!, 1);
    const backup = encoder(sw.port('backup').attachSource(owner())!, 2, 100);
    run(clock, 5, primary, backup);
    run(clock, 30, backup);
    expect(sw.report().pending).toBe('backup');
    run(clock, 10, primary, backup);
    expect(sw.report()).toMatchObject({ active: 'main', pending: null, switches: 0 });
  });

  it('a primary that disconnects is replaced at the backup\'s next keyframe; readers never see an end', () => {
    const { clock, sw, reader, events } = setup();
    const primaryHandle = sw.port('main').attachSource(owner())!;
    const primary = encoder(primaryHandle, 1);
    const backup = encoder(sw.port('backup').attachSource(owner())!, 2, 5);
    run(clock, 3, primary, backup);
    primaryHandle.detach('publisher left');
    expect(sw.report().pending).toBe('backup');
    for (let i = 0; i < 5; i++) backup.frame();
    expect(sw.report().active).toBe('backup');
    expect(reader.ended).toBe(0);
    expect(events.at(-1)).toMatchObject({ type: 'input.failover', reason: 'disconnected' });
    // And when the backup goes too, the flow's readers see the end.
    expect(sw.isLive('main')).toBe(false);
  });

  it('the active input reconnecting (its encoder restarted at timestamp 0) is spliced in: timestamps keep moving', () => {
    const { clock, sw, reader, events } = setup();
    const first = sw.port('main').attachSource(owner())!;
    first.push('video', 0, tag.videoHeader(1));
    first.push('video', 3_600_000, tag.keyframe(1)); // an hour into the first session
    first.push('video', 3_600_040, tag.frame(1));
    sw.port('backup').attachSource(owner()); // connected, silent
    first.detach('encoder restarted');
    const again = encoder(sw.port('main').attachSource(owner())!, 3);
    run(clock, 30, again);
    const video = reader.got.filter((m) => m.kind === 'video' && !m.isSequenceHeader).map((m) => m.timestamp);
    // Strictly rising, frame after frame: not stuck at the old session's last time.
    for (let i = 1; i < video.length; i++) expect(video[i]).toBeGreaterThan(video[i - 1]!);
    expect(video.at(-1)! - video[0]!).toBeGreaterThan(1000);
    expect(sw.report()).toMatchObject({ active: 'main', switches: 0 });
    expect(events).toEqual([]);
  });

  it('with revert, goes back to the primary once it has been healthy for revertAfterMs', () => {
    const { clock, sw, events } = setup(true);
    const primaryHandle = sw.port('main').attachSource(owner())!;
    encoder(primaryHandle, 1).frame();
    const backup = encoder(sw.port('backup').attachSource(owner())!, 2, 5);
    primaryHandle.detach('gone');
    for (let i = 0; i < 5; i++) backup.frame();
    expect(sw.report().active).toBe('backup');
    const back = encoder(sw.port('main').attachSource(owner())!, 3, 5);
    // Healthy for 2 s: not yet.
    run(clock, 50, back, backup);
    expect(sw.report().active).toBe('backup');
    run(clock, 40, back, backup);
    expect(sw.report().active).toBe('main');
    expect(events.map((e) => e.type)).toEqual(['input.failover', 'input.revert']);
  });

  it('with both inputs gone the hub source ends; close disconnects both publishers', () => {
    const { sw, hub, reader } = setup();
    const a = owner();
    const b = owner();
    const main = sw.port('main').attachSource(a)!;
    const backup = sw.port('backup').attachSource(b)!;
    encoder(main, 1).frame();
    expect(hub.live).toBe(true);
    expect(sw.port('main').attachSource(owner())).toBeUndefined(); // busy
    main.detach('x');
    backup.detach('y');
    expect(hub.live).toBe(false);
    expect(reader.ended).toBe(1);
    const c = owner();
    sw.port('backup').attachSource(c);
    sw.close('flow removed');
    expect(c.kicked).toEqual(['flow removed']);
    expect(sw.port('main').attachSource(owner())).toBeUndefined();
  });
});
