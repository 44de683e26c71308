import { describe, expect, it } from 'vitest';
import { OutputFeed, type OutputSink } from '../../src/core/output-feed.js';
import { StreamHub, type SourceHandle } from '../../src/core/stream-hub.js';

const AVC_HEADER = Buffer.from([0x17, 0x00, 0x00, 0x00, 0x00, 0x01, 0x64, 0x00, 0x1f]);
const KEY = Buffer.from([0x17, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x65]);
const INTER = Buffer.from([0x27, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x41]);
const AAC_HEADER = Buffer.from([0xaf, 0x00, 0x12, 0x10]);
const AAC = Buffer.from([0xaf, 0x01, 0x21, 0x00]);

class RecordingSink implements OutputSink {
  readonly sent: { kind: string; timestamp: number; key: boolean }[] = [];
  pending = 0;
  /** Payloads this sink's format cannot carry: refused, as an MPEG-TS sink refuses MP3. */
  readonly cannotCarry = new Set<Buffer>();
  sendMedia(kind: 'audio' | 'video', timestamp: number, payload: Buffer): boolean {
    if (this.cannotCarry.has(payload)) return false;
    this.sent.push({ kind, timestamp, key: payload === KEY || payload === AVC_HEADER });
    return true;
  }
  sendMetadata(timestamp: number): void {
    this.sent.push({ kind: 'meta', timestamp, key: false });
  }
  sendData(timestamp: number): void {
    this.sent.push({ kind: 'data', timestamp, key: false });
  }
  backlog(): number {
    return this.pending;
  }
}

function live(hub: StreamHub, startTs: number): SourceHandle {
  const source = hub.attachSource({ kick: () => undefined })!;
  source.pushMetadata(0, Buffer.from([0x02, 0x00, 0x0a, ...Buffer.from('onMetaData')]));
  source.push('video', 0, AVC_HEADER);
  source.push('audio', 0, AAC_HEADER);
  source.push('video', startTs, KEY);
  source.push('audio', startTs + 10, AAC);
  source.push('video', startTs + 40, INTER);
  return source;
}

const noEvents = { sourceLive: () => undefined, sourceGone: () => undefined, hubClosed: () => undefined };

describe('OutputFeed', () => {
  it('starts a connection at the cached keyframe with headers first, timestamps from 0', () => {
    const hub = new StreamHub();
    live(hub, 50_000);
    const feed = new OutputFeed(hub, 1 << 20, noEvents);
    feed.start();
    const sink = new RecordingSink();
    feed.attach(sink);
    expect(sink.sent.map((m) => `${m.kind}@${m.timestamp}`)).toEqual(['meta@0', 'video@0', 'audio@0', 'video@0', 'audio@10', 'video@40']);
    expect(feed.counters.framesSent).toBe(3);
  });

  it('keeps moving forward across its own reconnects and across source changes', () => {
    const hub = new StreamHub();
    const first = live(hub, 50_000);
    const feed = new OutputFeed(hub, 1 << 20, noEvents);
    feed.start();
    const a = new RecordingSink();
    feed.attach(a);
    first.push('video', 51_000, KEY);
    feed.detachSink();
    first.push('video', 52_000, INTER); // not sent: no connection
    const b = new RecordingSink();
    feed.attach(b); // reconnect within the same GOP: the replayed keyframe is older than what was sent
    const lastOnA = Math.max(...a.sent.map((m) => m.timestamp));
    expect(lastOnA).toBe(1000);
    expect(Math.min(...b.sent.map((m) => m.timestamp))).toBe(lastOnA + 1);

    first.detach('publisher left');
    const second = live(hub, 0); // a new publisher whose clock restarts at 0
    second.push('video', 1_000, KEY);
    const video = b.sent.filter((m) => m.kind === 'video').map((m) => m.timestamp);
    for (let i = 1; i < video.length; i++) expect(video[i]).toBeGreaterThanOrEqual(video[i - 1]!);
    expect(video.length).toBeGreaterThan(3);
  });

  it('skips to the next keyframe when the destination falls behind, and counts it', () => {
    const hub = new StreamHub();
    const source = live(hub, 0);
    const feed = new OutputFeed(hub, 1000, noEvents);
    feed.start();
    const sink = new RecordingSink();
    feed.attach(sink);
    sink.pending = 5000;
    source.push('video', 80, INTER);
    source.push('audio', 90, AAC);
    sink.pending = 0;
    source.push('video', 120, INTER); // still skipping: not a keyframe
    source.push('video', 2000, KEY);
    expect(sink.sent.slice(-1)[0]).toMatchObject({ kind: 'video', timestamp: 2000, key: true });
    expect(feed.dropped).toMatchObject({ frames: 3, skips: 1 });
  });

  it('counts frames as a player does: the end-of-sequence tag is sent but is no frame', () => {
    const hub = new StreamHub();
    const source = live(hub, 0);
    const feed = new OutputFeed(hub, 1 << 20, noEvents);
    feed.start();
    const sink = new RecordingSink();
    feed.attach(sink);
    expect(feed.counters.framesSent).toBe(3);
    source.push('video', 80, Buffer.from([0x17, 0x02, 0x00, 0x00, 0x00])); // AVC end of sequence
    expect(sink.sent.at(-1)).toMatchObject({ kind: 'video', timestamp: 80 });
    expect(feed.counters.framesSent).toBe(3);
  });

  it('counts frames the sink cannot carry as dropped, not sent, without skipping what it can carry', () => {
    const hub = new StreamHub();
    const source = live(hub, 0);
    const feed = new OutputFeed(hub, 1000, noEvents);
    feed.start();
    const sink = new RecordingSink();
    sink.cannotCarry.add(AAC);
    feed.attach(sink);
    const sentBefore = feed.counters.framesSent;
    source.push('audio', 50, AAC);
    source.push('video', 80, INTER);
    source.push('audio', 90, AAC);
    expect(feed.counters.framesSent - sentBefore).toBe(1);
    // The cached GOP's audio frame and the two live ones.
    expect(feed.dropped).toMatchObject({ frames: 3, skips: 0 });
    expect(sink.sent.at(-1)).toMatchObject({ kind: 'video', timestamp: 80 });
  });

  it('sends a cached GOP above maxBacklogBytes whole when a connection starts, then applies the limit to live media', () => {
    const hub = new StreamHub();
    const source = live(hub, 0);
    for (let t = 80; t <= 400; t += 40) source.push('video', t, INTER);
    const feed = new OutputFeed(hub, 1000, noEvents);
    feed.start();
    // Each message the sink takes queues 600 bytes: the GOP alone is far above 1000.
    const sink = new RecordingSink();
    const send = sink.sendMedia.bind(sink);
    sink.sendMedia = (kind, timestamp, payload) => {
      sink.pending += 600;
      return send(kind, timestamp, payload);
    };
    feed.attach(sink);
    expect(sink.sent.filter((m) => m.kind === 'video').length).toBe(2 + 10);
    expect(feed.dropped.skips).toBe(0);
    source.push('video', 440, INTER);
    source.push('video', 480, INTER);
    expect(sink.sent.at(-1)).toMatchObject({ timestamp: 480 });
    // Nothing drained, and more than the limit added after the burst: that is falling behind.
    source.push('video', 520, INTER);
    expect(feed.dropped).toMatchObject({ frames: 1, skips: 1 });
  });

  it('an owner attaching from sourceLive inside start() (a recorder switched on mid-stream) gets the cached GOP once', () => {
    const hub = new StreamHub();
    const source = live(hub, 1000);
    source.push('video', 1080, INTER);
    const sink = new RecordingSink();
    const feed: OutputFeed = new OutputFeed(hub, 1 << 20, { ...noEvents, sourceLive: () => feed.attach(sink) });
    feed.start();
    expect(sink.sent.map((m) => `${m.kind}@${m.timestamp}`)).toEqual(['meta@0', 'video@0', 'audio@0', 'video@0', 'audio@10', 'video@40', 'video@80']);
    source.push('video', 1120, INTER);
    expect(sink.sent.at(-1)).toMatchObject({ kind: 'video', timestamp: 120 });
  });

  it('tells its owner when the source goes live and away', () => {
    const hub = new StreamHub();
    const events: string[] = [];
    const feed = new OutputFeed(hub, 1 << 20, {
      sourceLive: () => void events.push('live'),
      sourceGone: () => void events.push('gone'),
      hubClosed: (r) => void events.push(`closed ${r}`),
    });
    feed.start();
    const source = live(hub, 0);
    source.detach('x');
    hub.close('bye');
    expect(events).toEqual(['live', 'gone', 'closed bye']);
  });
});
