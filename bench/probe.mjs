// The bench's in-process RTMP publisher and latency probe, in a child process of its own
// so that the bench's /proc sampling never delays it. Driven over IPC by bench/run.mjs.
//
// It publishes an FLV file in real time (each tag when the wall clock reaches its
// timestamp, looping with timestamps that keep rising) with flowrelay's own RTMP client
// (dist/rtmp/client), to one URL or to many, and optionally plays one URL back: every
// audio/video message received is matched to the moment it was sent by its content
// (kind, size and last 8 bytes; relays pass media payloads through untouched, and may
// rewrite timestamps), giving the added publish-to-play latency.
//
// Messages in:  { cmd: 'start', flv, urls, playUrl? } | { cmd: 'mark' } | { cmd: 'collect' } | { cmd: 'stop' }
// Messages out: { ev: 'ready', ... } | { ev: 'marked' } | { ev: 'stats', ... } | { ev: 'error', message }
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'node:timers';
import { pino } from 'pino';
import { RtmpClientConnection } from '../dist/rtmp/client/connection.js';
import { parseRtmpUrl } from '../dist/rtmp/client/url.js';
import { readFlv } from './lib/fixture.mjs';

const logger = pino({ level: 'silent' });
const CHUNK_SIZE = 4096;
/** Sent-message records older than this are forgotten (the fixture loops every 10+ s). */
const FORGET_MS = 8_000;
const MAX_SAMPLES = 200_000;

const send = (m) => process.send?.(m);
const fail = (message) => {
  send({ ev: 'error', message });
  shutdown(1);
};

let publishers = [];
let reader = null;
let timer = null;
let sweeper = null;
const sent = new Map();
let markAt = Infinity;
let samples = [];
let unmatched = 0;
let readerBytesAtMark = 0;
let readerMedia = 0;
let maxLateMs = 0;
let maxBacklog = 0;
let closedPublishers = 0;
let readerClosed = null;
let publisherClosed = null;

function fingerprint(kind, body) {
  const n = body.length;
  return n >= 8 ? `${kind}${n}:${body.readUInt32BE(n - 8)}:${body.readUInt32BE(n - 4)}` : `${kind}${n}:${body.toString('hex')}`;
}

function connection(url, mode, events) {
  const c = new RtmpClientConnection(
    { target: parseRtmpUrl(url), mode, connectTimeoutMs: 5_000, handshakeTimeoutMs: 10_000, chunkSize: CHUNK_SIZE, maxMessageSize: 16 * 1024 * 1024, logger },
    { ready() {}, media() {}, metadata() {}, data() {}, streamEnd() {}, closed() {}, ...events },
  );
  c.start();
  return c;
}

function isSequenceHeader(tag) {
  // AVC/AAC packet type 0; enhanced RTMP (0x80 bit) type 0 is a sequence start too.
  if (tag.type === 9) return (tag.body[0] & 0x80 ? tag.body[0] & 0x0f : tag.body[1]) === 0;
  return tag.type === 8 && tag.body[0] >> 4 === 10 && tag.body[1] === 0;
}

function startPublishing(flv, withProbe) {
  const { tags, durationMs } = readFlv(flv);
  // Metadata and codec headers once, at the start of the first pass only.
  const first = tags;
  const rest = tags.filter((t) => t.type !== 18 && !isSequenceHeader(t));
  let list = first;
  let i = 0;
  let loop = 0;
  const t0 = performance.now() + 20;
  const tick = () => {
    const now = performance.now();
    for (let n = 0; n < 10_000; n++) {
      const tag = list[i];
      const due = t0 + loop * durationMs + tag.timestamp;
      if (due > now) {
        timer = setTimeout(tick, due - now);
        return;
      }
      maxLateMs = Math.max(maxLateMs, now - due);
      const ts = loop * durationMs + tag.timestamp;
      if (withProbe && tag.type !== 18) sent.set(fingerprint(tag.type, tag.body), performance.now());
      for (const p of publishers) {
        if (p.state !== 'ready') continue;
        if (tag.type === 18) p.sendMetadata(ts, tag.body);
        else p.sendMedia(tag.type === 8 ? 'audio' : 'video', ts, tag.body);
        maxBacklog = Math.max(maxBacklog, p.writableLength);
      }
      if (++i === list.length) {
        i = 0;
        loop++;
        list = rest;
      }
    }
    timer = setTimeout(tick, 0);
  };
  tick();
  sweeper = setInterval(() => {
    const old = performance.now() - FORGET_MS;
    for (const [k, t] of sent) if (t < old) sent.delete(k);
  }, 2_000);
}

function onStart({ flv, urls, playUrl }) {
  let ready = 0;
  const deadline = setTimeout(() => fail(`only ${ready}/${urls.length} publishers ready within 20 s`), 20_000);
  const allReady = () => {
    // The clock starts once every publisher may send: metadata and codec headers go first.
    startPublishing(flv, Boolean(playUrl));
    if (!playUrl) {
      clearTimeout(deadline);
      send({ ev: 'ready', publishers: ready });
      return;
    }
    reader = connection(playUrl, 'play', {
      media(kind, _ts, body) {
        const now = performance.now();
        if (readerMedia++ === 0) {
          clearTimeout(deadline);
          send({ ev: 'ready', publishers: ready });
        }
        const at = sent.get(fingerprint(kind === 'audio' ? 8 : 9, body));
        if (at === undefined) {
          if (now >= markAt) unmatched++;
          return;
        }
        // Only messages sent inside the window: a cached GOP replayed at join is not latency.
        if (at >= markAt && samples.length < MAX_SAMPLES) samples.push(now - at);
      },
      closed(err) {
        readerClosed = err ? `${err.code}: ${err.message}` : 'closed';
      },
    });
  };
  publishers = urls.map((url) =>
    connection(url, 'publish', {
      ready() {
        if (++ready === urls.length) allReady();
      },
      closed(err) {
        closedPublishers++;
        publisherClosed ??= err ? `${err.code}: ${err.message}` : 'closed';
        if (ready < urls.length) fail(`publisher to ${url.replace(/\/[^/]*$/, '/<key>')} closed: ${err ? `${err.code}: ${err.message}` : 'closed'}`);
      },
    }),
  );
}

function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function collect() {
  const sorted = samples.slice().sort((a, b) => a - b);
  return {
    ev: 'stats',
    latency: { count: sorted.length, unmatched, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted.at(-1) ?? null },
    readerBytes: reader ? reader.bytesIn - readerBytesAtMark : 0,
    readerClosed,
    publishersAlive: publishers.filter((p) => p.state === 'ready').length,
    closedPublishers,
    publisherClosed,
    maxLateMs,
    maxBacklog,
  };
}

function shutdown(code) {
  clearTimeout(timer);
  clearInterval(sweeper);
  for (const p of publishers) p.close('bench done');
  reader?.close('bench done');
  setTimeout(() => process.exit(code), 200).unref();
}

process.on('message', (m) => {
  try {
    if (m.cmd === 'start') onStart(m);
    else if (m.cmd === 'mark') {
      markAt = performance.now();
      samples = [];
      unmatched = 0;
      maxLateMs = 0;
      readerBytesAtMark = reader?.bytesIn ?? 0;
      send({ ev: 'marked' });
    } else if (m.cmd === 'collect') send(collect());
    else if (m.cmd === 'stop') shutdown(0);
  } catch (err) {
    fail(err.stack ?? String(err));
  }
});
// The bench is gone: so are we.
process.on('disconnect', () => shutdown(0));
