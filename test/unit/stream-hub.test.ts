import { describe, expect, it } from 'vitest';
import { BACKWARD_JUMP_MS, StreamHub, type HubReader, type HubSourceOwner, type SourceHandle } from '../../src/core/stream-hub.js';
import { ReaderGate } from '../../src/core/reader-gate.js';
import type { MediaMessage } from '../../src/core/media.js';

// Real FLV tag bodies (legacy AVC and AAC, Adobe FLV spec E.4.2 / E.4.3).
const AVC_SEQUENCE_HEADER = Buffer.from([
  0x17, 0x00, 0x00, 0x00, 0x00, // keyframe | AVC, AVCPacketType 0, composition time 0
  0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x04, 0x67, 0x64, 0x00, 0x1f, 0x01, 0x00, 0x04, 0x68, 0xee, 0x3c, 0x80,
]);
const AAC_SEQUENCE_HEADER = Buffer.from([0xaf, 0x00, 0x12, 0x10]); // AAC LC, 44.1 kHz, stereo
const METADATA = Buffer.from('02000a6f6e4d65746144617461080000000000000009', 'hex'); // "onMetaData", empty ECMA array

function keyframe(tag: number, size = 20): Buffer {
  const b = Buffer.alloc(Math.max(size, 9), tag);
  b.set([0x17, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04], 0);
  return b;
}

function interframe(tag: number, size = 12): Buffer {
  const b = Buffer.alloc(Math.max(size, 9), tag);
  b.set([0x27, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04], 0);
  return b;
}

function aacFrame(tag: number, size = 8): Buffer {
  const b = Buffer.alloc(Math.max(size, 3), tag);
  b.set([0xaf, 0x01], 0);
  return b;
}

type ReaderEvent =
  | { type: 'deliver'; message: MediaMessage }
  | { type: 'sourceStarted' }
  | { type: 'sourceEnded' }
  | { type: 'hubClosed'; reason: string };

class FakeReader implements HubReader {
  readonly events: ReaderEvent[] = [];

  deliver(message: MediaMessage): void {
    this.events.push({ type: 'deliver', message });
  }

  sourceStarted(): void {
    this.events.push({ type: 'sourceStarted' });
  }

  sourceEnded(): void {
    this.events.push({ type: 'sourceEnded' });
  }

  hubClosed(reason: string): void {
    this.events.push({ type: 'hubClosed', reason });
  }

  get delivered(): MediaMessage[] {
    return this.events.flatMap((e) => (e.type === 'deliver' ? [e.message] : []));
  }

  get callbacks(): string[] {
    return this.events.filter((e) => e.type !== 'deliver').map((e) => e.type);
  }

  clear(): void {
    this.events.length = 0;
  }
}

class FakeOwner implements HubSourceOwner {
  readonly kicks: string[] = [];

  kick(reason: string): void {
    this.kicks.push(reason);
  }
}

function attach(hub: StreamHub, owner: HubSourceOwner = new FakeOwner()): SourceHandle {
  const handle = hub.attachSource(owner);
  if (!handle) throw new Error('expected the hub to accept the source');
  return handle;
}

/** A hub with a reader that was there before its source attached. */
function liveHub(): { hub: StreamHub; reader: FakeReader; source: SourceHandle } {
  const hub = new StreamHub();
  const reader = new FakeReader();
  hub.addReader(reader);
  return { hub, reader, source: attach(hub) };
}

/**
 * A hub whose first source sent what `first` pushes and left (a publisher reconnecting):
 * the second source, and a reader that saw everything, cleared of the first's messages.
 */
function secondSource(first: (source: SourceHandle) => void): { second: SourceHandle; reader: FakeReader } {
  const { hub, reader, source } = liveHub();
  first(source);
  source.detach('reconnecting');
  const second = attach(hub);
  reader.clear();
  return { second, reader };
}

/** Last delivered message whose payload is exactly `payload` (by identity). */
function byPayload(reader: FakeReader, payload: Buffer): MediaMessage {
  const found = reader.delivered.find((m) => m.payload === payload);
  if (!found) throw new Error('payload not delivered');
  return found;
}

describe('StreamHub sources', () => {
  it('accepts one source at a time, and another after detach', () => {
    const hub = new StreamHub();
    expect(hub.live).toBe(false);
    const first = attach(hub);
    expect(hub.live).toBe(true);
    expect(hub.attachSource(new FakeOwner())).toBeUndefined();
    first.detach('done');
    expect(hub.live).toBe(false);
    const second = hub.attachSource(new FakeOwner());
    expect(second).toBeDefined();
    expect(hub.counters.sourceStarts).toBe(2);
  });

  it('ignores pushes and detach from a handle that is no longer the source', () => {
    const hub = new StreamHub();
    const reader = new FakeReader();
    hub.addReader(reader);
    const old = attach(hub);
    old.detach('left');
    const current = attach(hub);
    reader.clear();
    old.push('video', 0, keyframe(1));
    old.pushMetadata(0, METADATA);
    old.pushData(0, Buffer.from([1]));
    old.detach('again');
    expect(reader.events).toEqual([]);
    expect(hub.live).toBe(true);
    current.push('video', 0, keyframe(2));
    expect(reader.delivered).toHaveLength(1);
  });

  it('tells readers when a source starts and ends', () => {
    const hub = new StreamHub();
    const reader = new FakeReader();
    hub.addReader(reader);
    expect(reader.callbacks).toEqual([]); // nothing live yet
    const source = attach(hub);
    expect(reader.callbacks).toEqual(['sourceStarted']);
    source.detach('publisher left');
    expect(reader.callbacks).toEqual(['sourceStarted', 'sourceEnded']);
    attach(hub);
    expect(reader.callbacks).toEqual(['sourceStarted', 'sourceEnded', 'sourceStarted']);
    expect(hub.readerCount).toBe(1);
  });

  it('a reader added while a source is live is told it started', () => {
    const hub = new StreamHub();
    attach(hub);
    const reader = new FakeReader();
    hub.addReader(reader);
    expect(reader.callbacks).toEqual(['sourceStarted']);
  });

  it('removes a reader with the function addReader returns', () => {
    const hub = new StreamHub();
    const source = attach(hub);
    const reader = new FakeReader();
    const remove = hub.addReader(reader);
    expect(hub.readerCount).toBe(1);
    remove();
    expect(hub.readerCount).toBe(0);
    reader.clear();
    source.push('video', 0, keyframe(1));
    source.detach('x');
    expect(reader.events).toEqual([]);
  });

  it("throws the FLV parser's ProtocolError for a malformed tag, and delivers nothing", () => {
    const { hub, reader, source } = liveHub();
    expect(() => source.push('video', 0, Buffer.from([0x17, 0x01]))).toThrow(expect.objectContaining({ name: 'ProtocolError', code: 'FLV_MALFORMED' }));
    expect(() => source.push('audio', 0, Buffer.from([0xaf]))).toThrow(expect.objectContaining({ code: 'FLV_MALFORMED' }));
    expect(reader.delivered).toEqual([]);
    expect(hub.counters.messagesIn).toBe(0);
  });

  it('ignores empty payloads and video command frames', () => {
    const { hub, reader, source } = liveHub();
    source.push('video', 0, Buffer.alloc(0));
    source.push('audio', 0, Buffer.alloc(0));
    source.push('video', 0, Buffer.from([0x57, 0x00])); // frameType 5 (command), AVC
    expect(reader.delivered).toEqual([]);
    expect(hub.counters.messagesIn).toBe(0);
  });
});

describe('StreamHub fan-out and join', () => {
  it('delivers the same message object to every reader', () => {
    const hub = new StreamHub();
    const a = new FakeReader();
    const b = new FakeReader();
    hub.addReader(a);
    hub.addReader(b);
    const source = attach(hub);
    const k = keyframe(1);
    source.push('video', 0, k);
    expect(a.delivered).toHaveLength(1);
    expect(a.delivered[0]).toBe(b.delivered[0]);
    expect(a.delivered[0]!.payload).toBe(k); // no copy
    expect(a.delivered[0]).toMatchObject({ kind: 'video', timestamp: 0, isKeyframe: true, isSequenceHeader: false });
  });

  it('a reader joining after the source changed gets the metadata at time 0 (FFmpeg takes any other time for a data stream)', () => {
    const hub = new StreamHub();
    const first = attach(hub);
    first.pushMetadata(0, METADATA);
    first.push('video', 0, AVC_SEQUENCE_HEADER);
    for (let t = 0; t <= 4000; t += 40) first.push('video', t, t % 2000 === 0 ? keyframe(t) : interframe(t));
    first.detach('publisher left');
    const second = attach(hub);
    second.pushMetadata(0, METADATA);
    second.push('video', 0, AVC_SEQUENCE_HEADER);
    second.push('video', 0, keyframe(9));
    const late = new FakeReader();
    hub.addReader(late);
    const [metadata, header, key] = late.delivered;
    expect(metadata).toMatchObject({ kind: 'data', payload: METADATA, timestamp: 0 });
    expect(header!.timestamp).toBeGreaterThan(4000);
    expect(key!.timestamp).toBe(header!.timestamp);
    expect(hub.snapshot()[0]).toBe(metadata);
  });

  it('a reader joining mid-GOP gets metadata, video header, audio header, then the GOP from its keyframe, in order and by identity', () => {
    const hub = new StreamHub();
    const early = new FakeReader();
    hub.addReader(early);
    const source = attach(hub);

    // Audio header before the video header: the replay order is fixed regardless.
    source.push('audio', 0, AAC_SEQUENCE_HEADER);
    source.push('video', 0, AVC_SEQUENCE_HEADER);
    source.pushMetadata(0, METADATA);
    const k1 = keyframe(1);
    const a1 = aacFrame(1);
    const p1 = interframe(1);
    const k2 = keyframe(2);
    const a2 = aacFrame(2);
    const p2 = interframe(2);
    const a3 = aacFrame(3);
    source.push('video', 0, k1);
    source.push('audio', 10, a1);
    source.push('video', 40, p1);
    source.push('video', 80, k2);
    source.push('audio', 90, a2);
    source.push('video', 120, p2);
    source.push('audio', 121, a3);

    const late = new FakeReader();
    hub.addReader(late);
    expect(late.callbacks).toEqual(['sourceStarted']);
    const replay = late.delivered;
    expect(replay.map((m) => m.payload)).toEqual([METADATA, AVC_SEQUENCE_HEADER, AAC_SEQUENCE_HEADER, k2, a2, p2, a3]);
    // The very objects the early reader got (the metadata as a copy at time 0, see below).
    for (const m of replay.slice(1)) expect(early.delivered).toContain(m);
    expect(replay[0]).toEqual({ ...byPayload(early, METADATA), timestamp: 0 });
    expect(replay[3]).toBe(byPayload(early, k2));
    expect(replay[0]).toMatchObject({ kind: 'data', isSequenceHeader: true, isKeyframe: false });
    expect(replay[1]).toMatchObject({ kind: 'video', isSequenceHeader: true, isKeyframe: false });
    expect(replay[2]).toMatchObject({ kind: 'audio', isSequenceHeader: true, isKeyframe: false });
    expect(replay[3]).toMatchObject({ kind: 'video', isKeyframe: true, timestamp: 80 });
    expect(replay[4]).toMatchObject({ kind: 'audio', isKeyframe: false, timestamp: 90 });

    // Live messages after the join reach both, as one object.
    const p3 = interframe(3);
    source.push('video', 160, p3);
    expect(late.delivered.at(-1)).toBe(early.delivered.at(-1));
    expect(late.delivered.at(-1)!.payload).toBe(p3);
  });

  it('replays the latest headers and metadata when they are replaced', () => {
    const hub = new StreamHub();
    const source = attach(hub);
    source.push('video', 0, AVC_SEQUENCE_HEADER);
    const newHeader = Buffer.from(AVC_SEQUENCE_HEADER);
    newHeader[10] = 0xe1;
    source.push('video', 10, newHeader);
    const meta2 = Buffer.concat([METADATA, Buffer.from([0])]);
    source.pushMetadata(0, METADATA);
    source.pushMetadata(20, meta2);
    const reader = new FakeReader();
    hub.addReader(reader);
    expect(reader.delivered.map((m) => m.payload)).toEqual([meta2, newHeader]);
  });

  it('a reader joining before the first keyframe gets only the headers', () => {
    const hub = new StreamHub();
    const source = attach(hub);
    source.push('video', 0, AVC_SEQUENCE_HEADER);
    source.push('audio', 0, AAC_SEQUENCE_HEADER);
    source.push('audio', 10, aacFrame(1));
    source.push('video', 20, interframe(1)); // joined mid-GOP ourselves: not a join point
    const reader = new FakeReader();
    hub.addReader(reader);
    expect(reader.delivered.map((m) => m.payload)).toEqual([AVC_SEQUENCE_HEADER, AAC_SEQUENCE_HEADER]);
  });

  it('forwards other data messages without caching them', () => {
    const hub = new StreamHub();
    const early = new FakeReader();
    hub.addReader(early);
    const source = attach(hub);
    source.push('video', 0, keyframe(1));
    const cue = Buffer.from('02000a6f6e437565506f696e74', 'hex');
    source.pushData(5, cue);
    expect(early.delivered.at(-1)).toMatchObject({ kind: 'data', payload: cue, isSequenceHeader: false, isKeyframe: false, timestamp: 5 });
    const late = new FakeReader();
    hub.addReader(late);
    expect(late.delivered.map((m) => m.payload)).not.toContain(cue);
  });

  it('forgets headers, metadata and GOP when the source ends', () => {
    const hub = new StreamHub();
    const source = attach(hub);
    source.pushMetadata(0, METADATA);
    source.push('video', 0, AVC_SEQUENCE_HEADER);
    source.push('audio', 0, AAC_SEQUENCE_HEADER);
    source.push('video', 0, keyframe(1));
    source.detach('gone');
    attach(hub);
    const reader = new FakeReader();
    hub.addReader(reader);
    expect(reader.delivered).toEqual([]);
  });

  it('counts what came in', () => {
    const hub = new StreamHub();
    const source = attach(hub);
    source.push('video', 0, AVC_SEQUENCE_HEADER);
    source.push('audio', 0, AAC_SEQUENCE_HEADER);
    source.push('video', 0, keyframe(1, 20));
    source.push('video', 40, interframe(1, 12));
    source.push('audio', 10, aacFrame(1, 8));
    source.pushMetadata(0, METADATA);
    // The end of sequence an encoder sends last is relayed, but it is no frame.
    const endOfSequence = Buffer.from([0x17, 0x02, 0x00, 0x00, 0x00]);
    source.push('video', 80, endOfSequence);
    expect(hub.counters).toEqual({
      bytesIn: AVC_SEQUENCE_HEADER.length + AAC_SEQUENCE_HEADER.length + 20 + 12 + 8 + METADATA.length + endOfSequence.length,
      messagesIn: 7,
      videoFrames: 2,
      audioFrames: 1,
      keyframes: 1,
      sourceStarts: 1,
      timestampJumps: 0,
      playerFramesDropped: 0,
      playerSkips: 0,
    });
  });
});

describe('StreamHub GOP cache cap', () => {
  it('stops caching once the GOP exceeds gopCacheMaxBytes and resumes at the next keyframe', () => {
    const hub = new StreamHub({ gopCacheMaxBytes: 100 });
    const source = attach(hub);
    source.push('video', 0, AVC_SEQUENCE_HEADER);
    const k1 = keyframe(1, 50);
    const p1 = interframe(1, 40);
    source.push('video', 0, k1);
    source.push('video', 40, p1); // 90 bytes: still cached

    const r1 = new FakeReader();
    hub.addReader(r1);
    expect(r1.delivered.map((m) => m.payload)).toEqual([AVC_SEQUENCE_HEADER, k1, p1]);

    source.push('video', 80, interframe(2, 20)); // 110 > 100: cache dropped
    const r2 = new FakeReader();
    hub.addReader(r2);
    expect(r2.delivered.map((m) => m.payload)).toEqual([AVC_SEQUENCE_HEADER]);

    source.push('video', 120, interframe(3, 10)); // still not caching (no keyframe yet)
    const r3 = new FakeReader();
    hub.addReader(r3);
    expect(r3.delivered.map((m) => m.payload)).toEqual([AVC_SEQUENCE_HEADER]);

    const k2 = keyframe(2, 30);
    const p4 = interframe(4, 10);
    source.push('video', 160, k2);
    source.push('video', 200, p4);
    const r4 = new FakeReader();
    hub.addReader(r4);
    expect(r4.delivered.map((m) => m.payload)).toEqual([AVC_SEQUENCE_HEADER, k2, p4]);
  });

  it('does not cache a single keyframe larger than the cap', () => {
    const hub = new StreamHub({ gopCacheMaxBytes: 100 });
    const source = attach(hub);
    source.push('video', 0, keyframe(1, 101));
    const reader = new FakeReader();
    hub.addReader(reader);
    expect(reader.delivered).toEqual([]);
  });

  it('counts audio in the GOP size when the stream has video', () => {
    const hub = new StreamHub({ gopCacheMaxBytes: 100 });
    const source = attach(hub);
    source.push('video', 0, keyframe(1, 60));
    source.push('audio', 10, aacFrame(1, 30));
    source.push('audio', 20, aacFrame(2, 30)); // 120 bytes
    const reader = new FakeReader();
    hub.addReader(reader);
    expect(reader.delivered).toEqual([]);
  });

  it('does not count headers against the cap', () => {
    const hub = new StreamHub({ gopCacheMaxBytes: 40 });
    const source = attach(hub);
    const k = keyframe(1, 30);
    source.push('video', 0, k);
    source.push('video', 1, AVC_SEQUENCE_HEADER); // 24 bytes, would exceed 40 if counted
    const reader = new FakeReader();
    hub.addReader(reader);
    expect(reader.delivered.map((m) => m.payload)).toEqual([AVC_SEQUENCE_HEADER, k]);
  });
});

describe('StreamHub audio-only streams', () => {
  it('marks every audio frame (not the sequence header) as a keyframe, and caches no GOP', () => {
    const { hub, reader, source } = liveHub();
    source.push('audio', 0, AAC_SEQUENCE_HEADER);
    source.push('audio', 0, aacFrame(1));
    source.push('audio', 23, aacFrame(2));
    expect(reader.delivered.map((m) => [m.isSequenceHeader, m.isKeyframe])).toEqual([
      [true, false],
      [false, true],
      [false, true],
    ]);
    const late = new FakeReader();
    hub.addReader(late);
    expect(late.delivered.map((m) => m.payload)).toEqual([AAC_SEQUENCE_HEADER]);
    expect(hub.counters.keyframes).toBe(0); // video keyframes only
  });

  it('marks non-AAC audio frames (MP3) as keyframes too', () => {
    const { reader, source } = liveHub();
    source.push('audio', 0, Buffer.from([0x2f, 0xff, 0xfb, 0x90]));
    expect(reader.delivered[0]).toMatchObject({ kind: 'audio', isKeyframe: true, isSequenceHeader: false });
  });

  it('stops marking audio frames as keyframes once video appears', () => {
    const { reader, source } = liveHub();
    source.push('audio', 0, aacFrame(1));
    source.push('video', 10, AVC_SEQUENCE_HEADER);
    source.push('audio', 23, aacFrame(2));
    expect(reader.delivered.filter((m) => m.kind === 'audio').map((m) => m.isKeyframe)).toEqual([true, false]);
  });

  it('forgets that a stream had video when the source changes', () => {
    const hub = new StreamHub();
    const reader = new FakeReader();
    hub.addReader(reader);
    const first = attach(hub);
    first.push('video', 0, keyframe(1));
    first.detach('x');
    const second = attach(hub);
    second.push('audio', 0, aacFrame(1));
    expect(reader.delivered.at(-1)).toMatchObject({ kind: 'audio', isKeyframe: true });
  });
});

describe('StreamHub timeline', () => {
  it('passes the first source timestamps through', () => {
    const { reader, source } = liveHub();
    source.push('video', 5000, keyframe(1));
    source.push('audio', 5010, aacFrame(1));
    source.push('video', 5040, interframe(1));
    expect(reader.delivered.map((m) => m.timestamp)).toEqual([5000, 5010, 5040]);
  });

  it('continues a second source that restarts at 0 one frame after the last timestamp sent', () => {
    const { second, reader } = secondSource((source) => {
      source.push('video', 0, keyframe(1));
      source.push('audio', 0, aacFrame(1));
      source.push('video', 40, interframe(1));
      source.push('audio', 46, aacFrame(2));
      source.push('video', 80, interframe(2));
    });
    second.push('video', 0, keyframe(2));
    second.push('audio', 0, aacFrame(3));
    second.push('audio', 23, aacFrame(4));
    second.push('video', 40, interframe(3));
    // The first source's video ran at 40 ms a frame (its audio, 46): its last frame at 80
    // is followed 40 ms later, not 1 ms (a duplicate time to a player counting frames).
    expect(reader.delivered.map((m) => [m.kind, m.timestamp])).toEqual([
      ['video', 120],
      ['audio', 120],
      ['audio', 143],
      ['video', 160],
    ]);
  });

  it('also continues a second source whose timestamps start far ahead', () => {
    const { second, reader } = secondSource((source) => {
      source.push('video', 0, keyframe(1));
      source.push('video', 1000, interframe(1));
    });
    second.push('video', 9_000_000, keyframe(2));
    second.push('video', 9_000_040, interframe(2));
    expect(reader.delivered.map((m) => m.timestamp)).toEqual([1001, 1041]);
  });

  it('anchors the second source on its first media; its metadata goes to the attached reader at time 0, as nginx-rtmp sends it', () => {
    const { second, reader } = secondSource((source) => {
      source.push('video', 500, keyframe(1));
    });
    second.pushMetadata(0, METADATA);
    second.push('video', 0, keyframe(2));
    second.push('video', 33, interframe(2));
    expect(reader.delivered.map((m) => m.timestamp)).toEqual([0, 501, 534]);
  });

  it('anchors a reconnecting source on its first frame, not on headers stamped with its session start', () => {
    const { second, reader } = secondSource((source) => {
      source.push('video', 0, keyframe(1));
      source.push('video', 1000, interframe(1));
    });
    // An encoder that reconnects stamps its headers 0 and its first frame 5 s later.
    second.push('video', 0, AVC_SEQUENCE_HEADER);
    second.push('audio', 0, AAC_SEQUENCE_HEADER);
    second.push('video', 5000, keyframe(2));
    second.push('audio', 5000, aacFrame(2));
    second.push('video', 5040, interframe(2));
    expect(reader.delivered.map((m) => [m.kind, m.isSequenceHeader, m.timestamp])).toEqual([
      ['video', true, 1001],
      ['audio', true, 1001],
      ['video', false, 1001],
      ['audio', false, 1001],
      ['video', false, 1041],
    ]);
  });

  it('keeps each track moving forward when the returning source anchors on the other track', () => {
    const { second, reader } = secondSource((source) => {
      source.push('video', 0, keyframe(1));
      source.push('audio', 980, aacFrame(1));
      source.push('video', 1000, interframe(1));
    });
    second.push('video', 0, AVC_SEQUENCE_HEADER);
    second.push('audio', 0, AAC_SEQUENCE_HEADER);
    second.push('audio', 5000, aacFrame(2));
    second.push('video', 4980, keyframe(2));
    second.push('video', 5020, interframe(2));
    expect(reader.delivered.map((m) => [m.kind, m.timestamp])).toEqual([
      ['video', 1001],
      ['audio', 1001],
      ['audio', 1001],
      ['video', 1001], // 981 on the source's own A/V offset: held at the video header's time
      ['video', 1021],
    ]);
  });

  it('does not anchor on an enhanced-RTMP metadata packet sent before the first frame', () => {
    const { second, reader } = secondSource((source) => {
      source.push('video', 0, keyframe(1));
      source.push('video', 1000, interframe(1));
    });
    // ExVideoTagHeader: IsExHeader, frame type 1, VideoPacketType 4 (Metadata), FourCC hvc1.
    second.push('video', 0, Buffer.concat([Buffer.from([0x80 | 0x10 | 4]), Buffer.from('hvc1'), METADATA]));
    second.push('video', 7000, keyframe(2));
    second.push('video', 7040, interframe(2));
    expect(reader.delivered.map((m) => m.timestamp)).toEqual([1001, 1001, 1041]);
  });

  it('never lets a track go backwards, but leaves the other track alone', () => {
    const { reader, source } = liveHub();
    source.push('video', 100, keyframe(1));
    source.push('audio', 100, aacFrame(1));
    source.push('audio', 90, aacFrame(2)); // a step back on audio: clamped
    source.push('video', 95, interframe(1)); // and on video: clamped to video's own last
    source.push('audio', 120, aacFrame(3));
    expect(reader.delivered.map((m) => [m.kind, m.timestamp])).toEqual([
      ['video', 100],
      ['audio', 100],
      ['audio', 100],
      ['video', 100],
      ['audio', 120],
    ]);
  });

  it("continues past a source's clock going back (an encoder restart, ffmpeg's 2^31 ms wrap) instead of repeating the last time", () => {
    const { hub, reader, source } = liveHub();
    const WRAP = 0x7fff_ffff; // ffmpeg writes 31-bit timestamps: after 2^31 - 1 comes 0
    source.push('video', WRAP - 66, keyframe(1));
    source.push('audio', WRAP - 50, aacFrame(1));
    source.push('video', WRAP - 33, interframe(1));
    source.push('audio', 3, aacFrame(2)); // the clock wrapped: audio notices first
    source.push('video', 0, interframe(2));
    source.push('video', 33, interframe(3));
    source.push('audio', 26, aacFrame(3));
    // Audio re-anchors one frame after the last time sent (video's last frame + its 33 ms
    // duration); video, 3 ms behind audio on the source's clock, follows 30 ms after its
    // last frame, then both run on.
    expect(reader.delivered.map((m) => [m.kind, m.timestamp])).toEqual([
      ['video', WRAP - 66],
      ['audio', WRAP - 50],
      ['video', WRAP - 33],
      ['audio', WRAP],
      ['video', WRAP - 3],
      ['video', WRAP + 30],
      ['audio', WRAP + 23],
    ]);
    expect(hub.counters.timestampJumps).toBe(1);
  });

  it('re-anchors on a jump back of more than BACKWARD_JUMP_MS only; a smaller step back is clamped', () => {
    const { hub, reader, source } = liveHub();
    source.push('video', 20_000, keyframe(1));
    source.push('video', 20_000 - BACKWARD_JUMP_MS, interframe(1)); // exactly the threshold: clamped
    source.push('video', 20_040, interframe(2));
    source.push('video', 0, keyframe(2)); // the encoder restarted its clock
    source.push('video', 40, interframe(3));
    expect(reader.delivered.map((m) => m.timestamp)).toEqual([20_000, 20_000, 20_040, 20_080, 20_120]);
    expect(hub.counters.timestampJumps).toBe(1);
  });

  it('keeps moving forward across many reconnects', () => {
    const hub = new StreamHub();
    const reader = new FakeReader();
    hub.addReader(reader);
    for (let i = 0; i < 5; i++) {
      const source = attach(hub);
      source.push('video', 0, keyframe(i));
      source.push('audio', 5, aacFrame(i));
      source.push('video', 33, interframe(i));
      source.detach('x');
    }
    for (const kind of ['audio', 'video'] as const) {
      const ts = reader.delivered.filter((m) => m.kind === kind).map((m) => m.timestamp);
      for (let i = 1; i < ts.length; i++) expect(ts[i]).toBeGreaterThan(ts[i - 1]!);
    }
    const all = reader.delivered.map((m) => m.timestamp);
    // Each source starts one video frame (33 ms) after the last: 66 ms per source.
    expect(all.at(-1)).toBe(4 * 66 + 33);
  });
});

describe('StreamHub with a reader that throws', () => {
  it('refuses the source whose start it threw on, and takes the next one', () => {
    const hub = new StreamHub();
    const reader = new FakeReader();
    hub.addReader(reader);
    let throws = true;
    hub.addReader({
      deliver: () => undefined,
      sourceStarted: () => {
        if (throws) throw new Error('reader broke');
      },
      sourceEnded: () => undefined,
      hubClosed: () => undefined,
    });
    expect(() => hub.attachSource(new FakeOwner())).toThrow('reader broke');
    // Not left live with no publisher behind it (which would refuse every next publisher).
    expect(hub.live).toBe(false);
    throws = false;
    const source = attach(hub);
    source.push('video', 0, keyframe(1));
    expect(hub.live).toBe(true);
    expect(reader.delivered).toHaveLength(1);
  });
});

describe('StreamHub close', () => {
  it('kicks the source owner, ends the source and closes every reader', () => {
    const hub = new StreamHub();
    const owner = new FakeOwner();
    const a = new FakeReader();
    const b = new FakeReader();
    hub.addReader(a);
    hub.addReader(b);
    attach(hub, owner);
    hub.close('flow removed');
    expect(owner.kicks).toEqual(['flow removed']);
    expect(a.callbacks).toEqual(['sourceStarted', 'sourceEnded', 'hubClosed']);
    expect(a.events.at(-1)).toEqual({ type: 'hubClosed', reason: 'flow removed' });
    expect(b.events.at(-1)).toEqual({ type: 'hubClosed', reason: 'flow removed' });
    expect(hub.live).toBe(false);
    expect(hub.readerCount).toBe(0);
  });

  it('is idempotent', () => {
    const hub = new StreamHub();
    const owner = new FakeOwner();
    const reader = new FakeReader();
    hub.addReader(reader);
    attach(hub, owner);
    hub.close('first');
    hub.close('second');
    expect(owner.kicks).toEqual(['first']);
    expect(reader.events.filter((e) => e.type === 'hubClosed')).toHaveLength(1);
  });

  it('refuses sources and closes new readers at once after close', () => {
    const hub = new StreamHub();
    hub.close('bye');
    expect(hub.attachSource(new FakeOwner())).toBeUndefined();
    const reader = new FakeReader();
    const remove = hub.addReader(reader);
    expect(reader.events).toEqual([{ type: 'hubClosed', reason: 'flow closed' }]);
    expect(hub.readerCount).toBe(0);
    expect(() => remove()).not.toThrow();
  });

  it('ignores pushes from the old handle after close, and a detach from the kicked owner', () => {
    const hub = new StreamHub();
    const reader = new FakeReader();
    hub.addReader(reader);
    const held: { handle?: SourceHandle } = {};
    const owner: HubSourceOwner = { kick: () => held.handle?.detach('kicked') };
    const handle = attach(hub, owner);
    held.handle = handle;
    hub.close('bye');
    handle.push('video', 0, keyframe(1));
    expect(reader.delivered).toEqual([]);
    expect(reader.callbacks).toEqual(['sourceStarted', 'sourceEnded', 'hubClosed']);
  });

  it('lets readers remove themselves while being closed', () => {
    const hub = new StreamHub();
    const removers: Array<() => void> = [];
    const closed: string[] = [];
    for (let i = 0; i < 3; i++) {
      const reader: HubReader = {
        deliver: () => undefined,
        sourceStarted: () => undefined,
        sourceEnded: () => undefined,
        hubClosed: () => {
          closed.push(`r${i}`);
          removers[i]!();
        },
      };
      removers.push(hub.addReader(reader));
    }
    hub.close('bye');
    expect(closed).toEqual(['r0', 'r1', 'r2']);
  });
});

// ---------------------------------------------------------------------------------------
// ReaderGate
// ---------------------------------------------------------------------------------------

function media(kind: MediaMessage['kind'], opts: { key?: boolean; header?: boolean; size?: number } = {}): MediaMessage {
  return { kind, timestamp: 0, payload: Buffer.alloc(opts.size ?? 100), isKeyframe: opts.key ?? false, isSequenceHeader: opts.header ?? false, isFrame: !opts.header };
}

describe('ReaderGate', () => {
  const KEY = media('video', { key: true, size: 1000 });
  const INTER = media('video', { size: 100 });
  const AUDIO = media('audio', { size: 10 });
  const VIDEO_HEADER = media('video', { header: true, size: 40 });
  const AUDIO_HEADER = media('audio', { header: true, size: 4 });
  const META = media('data', { header: true, size: 50 });
  const CUE = media('data', { size: 7 });

  it('starts by waiting for a keyframe; what it skips while starting is not counted as loss', () => {
    const gate = new ReaderGate(10_000);
    expect(gate.admit(INTER, 0)).toBe(false);
    expect(gate.admit(AUDIO, 0)).toBe(false);
    expect(gate.admit(KEY, 0)).toBe(true);
    expect(gate.admit(INTER, 0)).toBe(true);
    expect(gate.admit(AUDIO, 0)).toBe(true);
    expect(gate.droppedMessages).toBe(0);
    expect(gate.droppedBytes).toBe(0);
    expect(gate.skips).toBe(0);
  });

  it('always admits headers and data, even while dropping and far behind', () => {
    const gate = new ReaderGate(1000);
    for (const m of [VIDEO_HEADER, AUDIO_HEADER, META, CUE]) {
      expect(gate.admit(m, 0)).toBe(true);
      expect(gate.admit(m, 1_000_000)).toBe(true);
    }
    expect(gate.droppedMessages).toBe(0);
    // Still waiting for a keyframe: headers did not open the gate.
    expect(gate.admit(INTER, 0)).toBe(false);
  });

  it('starts dropping above maxBacklogBytes (not at it) and counts one skip per fall-behind', () => {
    const gate = new ReaderGate(1000);
    expect(gate.admit(KEY, 0)).toBe(true);
    expect(gate.admit(INTER, 1000)).toBe(true); // at the limit: still fine
    expect(gate.admit(INTER, 1001)).toBe(false);
    expect(gate.skips).toBe(1);
    expect(gate.admit(INTER, 0)).toBe(false); // backlog gone, but no keyframe yet
    expect(gate.admit(AUDIO, 0)).toBe(false);
    expect(gate.skips).toBe(1);
    expect(gate.droppedMessages).toBe(3);
    expect(gate.droppedBytes).toBe(210);
  });

  it('resumes only at a keyframe with backlog at most half the limit', () => {
    const gate = new ReaderGate(1000);
    gate.admit(KEY, 0);
    expect(gate.admit(INTER, 5000)).toBe(false);
    expect(gate.admit(KEY, 501)).toBe(false); // keyframe, but still too far behind
    expect(gate.admit(KEY, 500)).toBe(true); // exactly half
    expect(gate.admit(INTER, 900)).toBe(true);
    expect(gate.skips).toBe(1);
    expect(gate.droppedMessages).toBe(2);
    expect(gate.droppedBytes).toBe(1100);
  });

  it('admits a startup burst above the limit, and credits it until it drains', () => {
    const gate = new ReaderGate(1000);
    gate.beginBurst();
    expect(gate.admit(KEY, 0)).toBe(true);
    for (let queued = 1000; queued <= 50_000; queued += 1000) expect(gate.admit(INTER, queued)).toBe(true);
    expect(gate.behind(60_000)).toBe(0);
    gate.endBurst(60_000);
    // Live media after the burst: only what is queued beyond the burst counts.
    expect(gate.admit(INTER, 60_900)).toBe(true);
    // The queue drained to 30,000: at most that much of the burst can be left.
    expect(gate.admit(INTER, 30_000)).toBe(true);
    expect(gate.behind(31_000)).toBe(1000);
    expect(gate.admit(INTER, 31_001)).toBe(false);
    expect(gate.skips).toBe(1);
    // Drained altogether: the credit is gone for good, and the limit applies as before.
    expect(gate.admit(KEY, 0)).toBe(true);
    expect(gate.behind(5000)).toBe(5000);
    expect(gate.admit(INTER, 1001)).toBe(false);
    expect(gate.skips).toBe(2);
  });

  it('the initial keyframe must also come with a small backlog', () => {
    const gate = new ReaderGate(1000);
    expect(gate.admit(KEY, 600)).toBe(false);
    expect(gate.admit(KEY, 0)).toBe(true);
  });

  it('counts a skip each time the reader falls behind again', () => {
    const gate = new ReaderGate(1000);
    gate.admit(KEY, 0);
    for (let round = 1; round <= 3; round++) {
      expect(gate.admit(INTER, 2000)).toBe(false);
      expect(gate.admit(KEY, 0)).toBe(true);
      expect(gate.skips).toBe(round);
    }
  });

  it('treats audio keyframes (audio-only streams) as join points', () => {
    const gate = new ReaderGate(1000);
    const audioKey = media('audio', { key: true, size: 10 });
    expect(gate.admit(audioKey, 0)).toBe(true);
    expect(gate.admit(audioKey, 5000)).toBe(false);
    expect(gate.admit(audioKey, 0)).toBe(true);
  });

  it('resync makes the reader wait for the next keyframe without counting a skip or a loss', () => {
    const gate = new ReaderGate(1000);
    gate.admit(KEY, 0);
    gate.resync();
    expect(gate.admit(INTER, 0)).toBe(false);
    expect(gate.admit(KEY, 0)).toBe(true);
    expect(gate.skips).toBe(0);
    expect(gate.droppedMessages).toBe(0);
  });

  it('a resync while behind keeps counting the loss until the keyframe', () => {
    const gate = new ReaderGate(1000);
    gate.admit(KEY, 0);
    expect(gate.admit(INTER, 5000)).toBe(false);
    gate.resync();
    expect(gate.admit(INTER, 0)).toBe(false);
    expect(gate.admit(KEY, 0)).toBe(true);
    expect(gate.skips).toBe(1);
    expect(gate.droppedMessages).toBe(2);
  });

  it('fed by a hub, a slow reader loses frames up to the next keyframe and others are untouched', () => {
    const hub = new StreamHub();
    const fastGate = new ReaderGate(1000);
    const slowGate = new ReaderGate(1000);
    let slowBacklog = 0;
    const fast: MediaMessage[] = [];
    const slow: MediaMessage[] = [];
    const reader = (gate: ReaderGate, out: MediaMessage[], backlog: () => number): HubReader => ({
      deliver: (m) => {
        if (gate.admit(m, backlog())) out.push(m);
      },
      sourceStarted: () => gate.resync(),
      sourceEnded: () => undefined,
      hubClosed: () => undefined,
    });
    hub.addReader(reader(fastGate, fast, () => 0));
    hub.addReader(reader(slowGate, slow, () => slowBacklog));
    const source = attach(hub);
    source.push('video', 0, AVC_SEQUENCE_HEADER);
    source.push('video', 0, keyframe(1));
    source.push('video', 40, interframe(1));
    slowBacklog = 5000;
    source.push('video', 80, interframe(2));
    source.push('video', 120, interframe(3));
    slowBacklog = 0;
    source.push('video', 160, interframe(4));
    source.push('video', 200, keyframe(2));
    source.push('video', 240, interframe(5));
    expect(fast).toHaveLength(8);
    expect(slow.map((m) => m.timestamp)).toEqual([0, 0, 40, 200, 240]);
    expect(slowGate.skips).toBe(1);
    expect(slowGate.droppedMessages).toBe(3);
    expect(fastGate.droppedMessages).toBe(0);
  });
});

describe('timeline anchoring', () => {
  it('anchors a new source on its first media, not on metadata with an unrelated timestamp', () => {
    const hub = new StreamHub();
    const seen: MediaMessage[] = [];
    hub.addReader({ deliver: (m) => void seen.push(m), sourceStarted: () => undefined, sourceEnded: () => undefined, hubClosed: () => undefined });
    const first = hub.attachSource({ kick: () => undefined })!;
    first.push('video', 0, Buffer.from([0x17, 0x01, 0, 0, 0, 0x65]));
    first.push('video', 10_000, Buffer.from([0x27, 0x01, 0, 0, 0, 0x41]));
    first.detach('gone');
    const second = hub.attachSource({ kick: () => undefined })!;
    second.pushMetadata(0, Buffer.from([0x02, 0, 0]));
    second.push('video', 3_600_000, Buffer.from([0x17, 0x01, 0, 0, 0, 0x65]));
    second.push('video', 3_600_040, Buffer.from([0x27, 0x01, 0, 0, 0, 0x41]));
    const video = seen.filter((m) => m.kind === 'video').map((m) => m.timestamp);
    expect(video).toEqual([0, 10_000, 10_001, 10_041]);
  });
});
