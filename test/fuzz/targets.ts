/**
 * The hostile-input contract of every codec, as one fuzz target per codec: `run` feeds the
 * bytes the way the daemon would (whole and re-sliced, through the same dispatch the RTMP
 * session and the stream hub apply) and asserts what DESIGN.md promises: only the codec's
 * typed ProtocolError may escape (or nothing at all, where the codec says it never
 * throws), and output stays bounded by input. Anything else surfaces as the original
 * error or a ContractViolation, which is a finding.
 *
 * Hangs are the caller's to time (test/unit/fuzz.test.ts, test/fuzz/long.fuzz.ts).
 */
import { ProtocolError } from '../../src/lib/errors.js';
import { decodeAmf0, type AmfValue } from '../../src/protocol/amf/amf0.js';
import { avcResolution, parseAudioTag, parseVideoTag } from '../../src/protocol/flv/tag.js';
import { TsDemuxer } from '../../src/protocol/mpegts/demuxer.js';
import { TsMuxer, type TsMuxerInput } from '../../src/protocol/mpegts/muxer.js';
import { splitAggregate } from '../../src/protocol/rtmp/aggregate.js';
import { ChunkDecoder, type RtmpMessage } from '../../src/protocol/rtmp/chunk-decoder.js';
import { ClientHandshake } from '../../src/protocol/rtmp/client-handshake.js';
import { decodeAmf3Command, decodeCommand, decodeDataMessage, stripSetDataFrame } from '../../src/protocol/rtmp/command.js';
import { parseUserControl } from '../../src/protocol/rtmp/control.js';
import { HANDSHAKE_SIZE, ServerHandshake } from '../../src/protocol/rtmp/handshake.js';
import { MessageType } from '../../src/protocol/rtmp/message-types.js';
import { parseStreamId } from '../../src/protocol/srt/stream-id.js';

/** A broken promise other than an escaping exception: unbounded output, inconsistent results. */
export class ContractViolation extends Error {
  constructor(
    readonly target: string,
    message: string,
  ) {
    super(`${target}: ${message}`);
    this.name = 'ContractViolation';
  }
}

/** What one run did, so the fuzz tests can check that the generators reach past the first check. */
export interface FuzzOutcome {
  /** The ProtocolError code that ended the run (codecs that may throw), if one did. */
  error?: string;
  /** Messages, values or tags produced: > 0 means the input got past the outer parsing. */
  outputs: number;
}

export interface FuzzTarget {
  /** Also the corpus folder name: test/fuzz/corpus/<name>/. */
  name: string;
  /** One line: what the input bytes are and what is driven with them. */
  description: string;
  /** Whether the codec may reject input with a ProtocolError (false: it promises never to throw). */
  mayThrow: boolean;
  run(input: Buffer): FuzzOutcome;
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/** A split position derived from the input itself, so a corpus file replays identically. */
export function derivedSplit(input: Buffer): number {
  if (input.length === 0) return 0;
  const mid = input[input.length >> 1] as number;
  const last = input[input.length - 1] as number;
  return (mid * 257 + last * 31 + input.length * 7) % (input.length + 1);
}

/** A piece size in 1..max derived from the input (TCP reads and SRT messages come in any size). */
function derivedPieceSize(input: Buffer, max: number): number {
  const first = input[0] ?? 0;
  return 1 + ((first * 131 + input.length) % max);
}

function slices(input: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < input.length; i += size) out.push(input.subarray(i, i + size));
  return out;
}

function splitAt(input: Buffer, at: number): Buffer[] {
  return [input.subarray(0, at), input.subarray(at)];
}

/** Runs fn; returns the code of a ProtocolError it threw; rethrows anything else. */
function protocolErrorOf(target: string, fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    if (typeof err.code !== 'string' || err.code.length === 0) throw new ContractViolation(target, `ProtocolError without a code: ${err.message}`);
    return err.code;
  }
}

function bound(target: string, ok: boolean, what: () => string): void {
  if (!ok) throw new ContractViolation(target, what());
}

/** Counts values in a decoded AMF tree and the UTF-16 length of its strings (keys included). */
function amfSize(values: readonly AmfValue[]): { nodes: number; chars: number; depth: number } {
  let nodes = 0;
  let chars = 0;
  let depth = 0;
  const walk = (v: AmfValue, level: number): void => {
    nodes += 1;
    depth = Math.max(depth, level);
    if (typeof v === 'string') chars += v.length;
    else if (Array.isArray(v)) for (const item of v) walk(item, level + 1);
    else if (v !== null && typeof v === 'object' && !(v instanceof Date)) {
      for (const key of Object.keys(v)) {
        chars += key.length;
        walk(v[key], level + 1);
      }
    }
  };
  for (const v of values) walk(v, 0);
  return { nodes, chars, depth };
}

/** Every AMF0 value and property costs at least one byte and a string character at least one byte. */
function checkAmfBound(target: string, values: readonly AmfValue[], inputLength: number): void {
  const size = amfSize(values);
  bound(target, size.nodes <= inputLength, () => `${size.nodes} AMF values decoded from ${inputLength} bytes`);
  bound(target, size.chars <= inputLength, () => `${size.chars} string characters decoded from ${inputLength} bytes`);
}

/** What the stream hub does with a media payload (core/stream-hub.ts ingestMedia). */
function classifyMedia(kind: 'audio' | 'video', payload: Buffer): { isKeyframe: boolean; isSequenceHeader: boolean } | undefined {
  if (payload.length === 0) return undefined;
  if (kind === 'video') {
    const info = parseVideoTag(payload);
    return info.isCommandFrame ? undefined : { isKeyframe: info.isKeyframe, isSequenceHeader: info.isSequenceHeader };
  }
  const info = parseAudioTag(payload);
  return { isKeyframe: false, isSequenceHeader: info.isSequenceHeader };
}

/**
 * The message dispatch of rtmp/session.ts (server) and rtmp/client/connection.ts (client,
 * which reads a missing transaction id as 0), minus the I/O: every codec a message
 * reaches runs on it.
 */
function dispatchRtmp(target: string, m: RtmpMessage, client: boolean): void {
  const options = { missingTransactionIdAsZero: client };
  switch (m.typeId) {
    case MessageType.Audio:
      classifyMedia('audio', m.payload);
      return;
    case MessageType.Video:
      classifyMedia('video', m.payload);
      return;
    case MessageType.Aggregate: {
      let bytes = 0;
      for (const part of splitAggregate(m.payload, m.timestamp)) {
        bytes += part.payload.length;
        classifyMedia(part.kind, part.payload);
      }
      bound(target, bytes <= m.payload.length, () => `aggregate of ${m.payload.length} bytes split into ${bytes} bytes`);
      return;
    }
    case MessageType.DataAmf0:
    case MessageType.DataAmf3: {
      const body = m.typeId === MessageType.DataAmf3 ? m.payload.subarray(1) : m.payload;
      const data = decodeDataMessage(stripSetDataFrame(body));
      checkAmfBound(target, data.values, body.length);
      return;
    }
    case MessageType.CommandAmf0:
      checkAmfBound(target, decodeCommand(m.payload, options).args, m.payload.length);
      return;
    case MessageType.CommandAmf3:
      checkAmfBound(target, decodeAmf3Command(m.payload, options).args, m.payload.length);
      return;
    case MessageType.UserControl:
      parseUserControl(m.payload);
      return;
    default:
      return;
  }
}

interface ChunkRun {
  messages: number;
  bytes: number;
  error: string | undefined;
}

/** Feeds pieces to a fresh decoder as a session does; the first ProtocolError ends the connection. */
function runChunkStream(target: string, pieces: readonly Buffer[], decoder = new ChunkDecoder(), client = false): ChunkRun {
  const run: ChunkRun = { messages: 0, bytes: 0, error: undefined };
  run.error = protocolErrorOf(target, () => {
    for (const piece of pieces) {
      decoder.feed(piece, (m) => {
        run.messages += 1;
        run.bytes += m.payload.length;
        dispatchRtmp(target, m, client);
      });
    }
  });
  return run;
}

function checkChunkBound(target: string, run: ChunkRun, inputLength: number): void {
  // Payload bytes are input bytes; a message costs at least its one-byte chunk header.
  bound(target, run.bytes <= inputLength, () => `${run.bytes} payload bytes from ${inputLength} input bytes`);
  bound(target, run.messages <= inputLength, () => `${run.messages} messages from ${inputLength} input bytes`);
}

// ---------------------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------------------

const rtmpChunks: FuzzTarget = {
  name: 'rtmp-chunks',
  description: 'RTMP chunk stream after the handshake: ChunkDecoder (default limits) plus the session dispatch to command, data, aggregate, user control and FLV tag classification',
  mayThrow: true,
  run(input) {
    const name = 'rtmp-chunks';
    const whole = runChunkStream(name, [input]);
    checkChunkBound(name, whole, input.length);
    const split = runChunkStream(name, splitAt(input, derivedSplit(input)));
    const reads = runChunkStream(name, slices(input, derivedPieceSize(input, 300)));
    for (const other of [split, reads]) {
      // The decoder is incremental: how TCP sliced the bytes must not change what they mean.
      bound(name, other.messages === whole.messages && other.bytes === whole.bytes && other.error === whole.error, () =>
        `outcome depends on slicing: whole ${JSON.stringify(whole)}, sliced ${JSON.stringify(other)}`);
    }
    return { error: whole.error, outputs: whole.messages };
  },
};

const rtmpHandshake: FuzzTarget = {
  name: 'rtmp-handshake',
  description: 'bytes a client sends to the server: ServerHandshake (C0 C1 C2, plain or digest) split at a derived point, then the rest into the chunk stream',
  mayThrow: true,
  run(input) {
    const name = 'rtmp-handshake';
    const hs = new ServerHandshake(() => 0x12345678);
    let out = 0;
    let rest: Buffer | undefined;
    const decoder = new ChunkDecoder();
    const chunks = (bytes: Buffer): void => {
      const r = runChunkStream(name, [bytes], decoder);
      if (r.error !== undefined) throw new ProtocolError(r.error, 'chunk stream');
    };
    const error = protocolErrorOf(name, () => {
      for (const piece of splitAt(input, derivedSplit(input))) {
        if (rest !== undefined) {
          chunks(piece);
          continue;
        }
        const progress = hs.feed(piece);
        out += progress.output?.length ?? 0;
        if (progress.done) {
          rest = progress.rest;
          chunks(rest);
        }
      }
    });
    bound(name, out === 0 || (out === 1 + 2 * HANDSHAKE_SIZE && input.length >= 1 + HANDSHAKE_SIZE), () => `${out} handshake bytes answered to ${input.length} input bytes`);
    // A complete C0 C1 with the right version must be answered.
    bound(name, out > 0 || input[0] !== 3 || input.length < 1 + HANDSHAKE_SIZE, () => `no S0 S1 S2 after ${input.length} bytes of C0 C1`);
    bound(name, rest === undefined || rest.length <= input.length - (1 + 2 * HANDSHAKE_SIZE), () => 'rest longer than the input after C0 C1 C2');
    return { error, outputs: (out > 0 ? 1 : 0) + (rest !== undefined ? 1 : 0) };
  },
};

const rtmpClientHandshake: FuzzTarget = {
  name: 'rtmp-client-handshake',
  description: 'bytes a server answers to our C0 C1: ClientHandshake (S0 S1 S2, digest or plain) split at a derived point, then the rest into the chunk stream',
  mayThrow: true,
  run(input) {
    const name = 'rtmp-client-handshake';
    const hs = new ClientHandshake(() => 0x12345678);
    hs.start();
    let done = false;
    const decoder = new ChunkDecoder();
    const chunks = (bytes: Buffer): void => {
      const r = runChunkStream(name, [bytes], decoder, true);
      if (r.error !== undefined) throw new ProtocolError(r.error, 'chunk stream');
    };
    const error = protocolErrorOf(name, () => {
      for (const piece of splitAt(input, derivedSplit(input))) {
        if (done) {
          chunks(piece);
          continue;
        }
        const progress = hs.feed(piece);
        if (progress.done) {
          done = true;
          const c2 = progress.output.length;
          bound(name, c2 === HANDSHAKE_SIZE, () => `C2 of ${c2} bytes`);
          chunks(progress.rest);
        }
      }
    });
    return { error, outputs: done ? 1 : 0 };
  },
};

const rtmpCommand: FuzzTarget = {
  name: 'rtmp-command',
  description: 'one command or data message payload: decodeCommand (strict and lenient), decodeAmf3Command, decodeDataMessage with and without stripSetDataFrame',
  mayThrow: true,
  run(input) {
    const name = 'rtmp-command';
    let outputs = 0;
    const errors = [
      protocolErrorOf(name, () => {
        const c = decodeCommand(input);
        checkAmfBound(name, [c.name, c.commandObject, ...c.args], input.length);
        outputs += 1;
      }),
      protocolErrorOf(name, () => {
        checkAmfBound(name, decodeCommand(input, { missingTransactionIdAsZero: true }).args, input.length);
      }),
      protocolErrorOf(name, () => {
        checkAmfBound(name, decodeAmf3Command(input).args, input.length);
        outputs += 1;
      }),
      protocolErrorOf(name, () => {
        const stripped = stripSetDataFrame(input);
        bound(name, stripped.length <= input.length && stripped.buffer === input.buffer, () => 'stripSetDataFrame did not return a view of its input');
        const data = decodeDataMessage(stripped);
        checkAmfBound(name, data.values, input.length);
        outputs += 1;
      }),
    ];
    // Rejected only when no reading accepted it (a data message is no command, and so on).
    return { error: errors.every((e) => e !== undefined) ? errors[0] : undefined, outputs };
  },
};

const amf0: FuzzTarget = {
  name: 'amf0',
  description: 'an AMF0 value sequence: decodeAmf0 with the default limits and with the hard maximum depth and a large item cap',
  mayThrow: true,
  run(input) {
    const name = 'amf0';
    let outputs = 0;
    const error = protocolErrorOf(name, () => {
      const values = decodeAmf0(input);
      checkAmfBound(name, values, input.length);
      const size = amfSize(values);
      // Top-level values sit at level 0, so containers nested 16 deep put leaves at level 16.
      bound(name, size.depth <= 16, () => `nesting ${size.depth} with the default maxDepth 16`);
      outputs = size.nodes;
    });
    const deep = protocolErrorOf(name, () => {
      const values = decodeAmf0(input, { maxDepth: 10_000, maxItems: 1_000_000 });
      checkAmfBound(name, values, input.length);
      const size = amfSize(values);
      bound(name, size.depth <= 256, () => `nesting ${size.depth} beyond the hard limit 256`);
    });
    return { error: error ?? deep, outputs };
  },
};

const rtmpAggregate: FuzzTarget = {
  name: 'rtmp-aggregate',
  description: 'an aggregate message (type 22) payload: splitAggregate at a wrap-prone timestamp, each part classified as the hub does',
  mayThrow: true,
  run(input) {
    const name = 'rtmp-aggregate';
    let outputs = 0;
    // Near the 32-bit wrap, so rebasing sub-tag times on it crosses the wrap for most inputs.
    const timestamp = (0xffffff00 + input.length) >>> 0;
    const error = protocolErrorOf(name, () => {
      const parts = splitAggregate(input, timestamp);
      let bytes = 0;
      for (const part of parts) {
        bytes += part.payload.length;
        bound(name, Number.isFinite(part.timestamp), () => `part timestamp ${part.timestamp}`);
        classifyMedia(part.kind, part.payload);
      }
      bound(name, bytes <= input.length, () => `${bytes} part bytes from ${input.length}`);
      // Each sub-tag costs 15 bytes of framing.
      bound(name, parts.length * 15 <= input.length, () => `${parts.length} parts from ${input.length} bytes`);
      outputs = parts.length;
    });
    return { error, outputs };
  },
};

const rtmpControl: FuzzTarget = {
  name: 'rtmp-control',
  description: 'a user control message (type 4) payload: parseUserControl, which reports unknown events instead of failing',
  mayThrow: true,
  run(input) {
    let outputs = 0;
    const error = protocolErrorOf('rtmp-control', () => {
      if (parseUserControl(input) !== undefined) outputs = 1;
    });
    return { error, outputs };
  },
};

const flvTag: FuzzTarget = {
  name: 'flv-tag',
  description: 'an FLV audio/video tag body: parseVideoTag, parseAudioTag (legacy and enhanced RTMP, ModEx, multitrack) and avcResolution, which never throws',
  mayThrow: true,
  run(input) {
    const name = 'flv-tag';
    let outputs = 0;
    const video = protocolErrorOf(name, () => {
      const info = parseVideoTag(input);
      outputs += 1;
      bound(name, info.fourcc === undefined || info.fourcc.length === 4, () => `FourCC ${JSON.stringify(info.fourcc)}`);
    });
    const audio = protocolErrorOf(name, () => {
      parseAudioTag(input);
      outputs += 1;
    });
    // Documented never to throw: no ProtocolError allowed either.
    const res = avcResolution(input);
    if (res !== undefined) {
      outputs += 1;
      bound(name, res.width > 0 && res.width <= 0xffff && res.height > 0 && res.height <= 0xffff, () => `resolution ${res.width}x${res.height}`);
    }
    return { error: video !== undefined && audio !== undefined ? video : undefined, outputs };
  },
};

/**
 * Input framing for the muxer target: a run of records, each
 * [flags u8][timestamp u32 BE][length u24 BE][body], where flags bit 0-1 are the kind
 * (0 audio, 1 video, 2 data, 3 video), bit 2 isKeyframe and bit 3 isSequenceHeader: the
 * flags are arbitrary, as a buggy hub or a hostile tag could make them. A record that
 * runs past the end takes what is left.
 */
export function parseMuxRecords(input: Buffer): TsMuxerInput[] {
  const out: TsMuxerInput[] = [];
  let pos = 0;
  while (pos < input.length) {
    const flags = input[pos] as number;
    const header = Math.min(8, input.length - pos);
    const timestamp = header >= 5 ? input.readUInt32BE(pos + 1) : 0;
    const length = header >= 8 ? input.readUIntBE(pos + 5, 3) : 0;
    const start = pos + header;
    const end = Math.min(input.length, start + length);
    const kindBits = flags & 0x03;
    out.push({
      kind: kindBits === 0 ? 'audio' : kindBits === 2 ? 'data' : 'video',
      timestamp,
      payload: input.subarray(start, end),
      isKeyframe: (flags & 0x04) !== 0,
      isSequenceHeader: (flags & 0x08) !== 0,
    });
    pos = end;
  }
  return out;
}

export function encodeMuxRecord(m: TsMuxerInput): Buffer {
  const head = Buffer.alloc(8);
  head[0] = (m.kind === 'audio' ? 0 : m.kind === 'video' ? 1 : 2) | (m.isKeyframe ? 0x04 : 0) | (m.isSequenceHeader ? 0x08 : 0);
  head.writeUInt32BE(m.timestamp >>> 0, 1);
  head.writeUIntBE(m.payload.length, 5, 3);
  return Buffer.concat([head, m.payload]);
}

/** 188-byte packets, each starting with the sync byte. */
function checkTsPackets(target: string, ts: Buffer): void {
  bound(target, ts.length % 188 === 0, () => `muxer output of ${ts.length} bytes is not whole TS packets`);
  for (let i = 0; i < ts.length; i += 188) bound(target, ts[i] === 0x47, () => `TS packet at ${i} without sync byte`);
}

/**
 * What a message may cost in TS beyond its own bytes: PAT + PMT, a PCR-only packet and the
 * last packet's stuffing (4 x 188), plus PES header, AUD and start codes. Three times the
 * payload covers the worst legitimate growth (1-byte NAL length prefixes become 4-byte
 * start codes). The rest of the slack is for parameter sets repeated before a keyframe,
 * which the muxer does for sets up to 1 KiB whatever the frame's size (annexb.ts).
 */
const MUX_SLACK_PER_MESSAGE = 2048;

const mpegtsMux: FuzzTarget = {
  name: 'mpegts-mux',
  description: 'FLV tag bodies with arbitrary keyframe/sequence-header flags (records, see parseMuxRecords): TsMuxer.mux, which must never throw, producing whole TS packets of bounded size',
  mayThrow: false,
  run(input) {
    const name = 'mpegts-mux';
    const records = parseMuxRecords(input);
    const muxer = new TsMuxer();
    let out = 0;
    let payload = 0;
    for (const r of records) {
      const ts = muxer.mux(r);
      checkTsPackets(name, ts);
      out += ts.length;
      payload += r.payload.length;
    }
    bound(name, out <= 3 * payload + MUX_SLACK_PER_MESSAGE * records.length, () =>
      `${out} TS bytes from ${records.length} messages of ${payload} bytes`);
    return { outputs: muxer.counters.videoFrames + muxer.counters.audioFrames };
  },
};

const mpegtsDemux: FuzzTarget = {
  name: 'mpegts-demux',
  description: 'an MPEG-TS byte stream as SRT delivers it (1316-byte messages): TsDemuxer, its tags classified as the hub does and muxed again as an SRT output would',
  mayThrow: false,
  run(input) {
    const name = 'mpegts-demux';
    let tags = 0;
    let bytes = 0;
    const muxer = new TsMuxer();
    const demuxer = new TsDemuxer((tag) => {
      tags += 1;
      bytes += tag.payload.length;
      bound(name, Number.isSafeInteger(tag.timestamp) && tag.timestamp >= 0, () => `tag timestamp ${tag.timestamp}`);
      if (tag.kind === 'data') return;
      // The demuxer makes these tags itself: classifying them must not fail at all.
      const flags = classifyMedia(tag.kind, tag.payload);
      if (flags === undefined) return;
      checkTsPackets(name, muxer.mux({ kind: tag.kind, timestamp: tag.timestamp, payload: tag.payload, ...flags }));
    });
    for (const piece of slices(input, 1316)) demuxer.feed(piece);
    demuxer.flush();
    bound(name, bytes <= 2 * input.length + 64, () => `${bytes} bytes of FLV tags (${tags} tags) from ${input.length} bytes of TS`);
    return { outputs: tags };
  },
};

const FLOW_ID = /^[a-z0-9-]{1,64}$/;

const srtStreamId: FuzzTarget = {
  name: 'srt-stream-id',
  description: 'an SRT stream id (the bytes as UTF-8 and as Latin-1): parseStreamId, which answers ok or a reason and never throws',
  mayThrow: false,
  run(input) {
    const name = 'srt-stream-id';
    let outputs = 0;
    for (const s of [input.toString('utf8'), input.toString('latin1')]) {
      const r = parseStreamId(s);
      if (!r.ok) continue;
      outputs += 1;
      bound(name, FLOW_ID.test(r.request.flowId), () => `accepted flow id ${JSON.stringify(r.request.flowId)}`);
      bound(name, r.request.key === undefined || r.request.key.length <= s.length, () => 'key longer than the stream id');
    }
    return { outputs };
  },
};

export const TARGETS: readonly FuzzTarget[] = [
  rtmpChunks,
  rtmpHandshake,
  rtmpClientHandshake,
  rtmpCommand,
  amf0,
  rtmpAggregate,
  rtmpControl,
  flvTag,
  mpegtsDemux,
  mpegtsMux,
  srtStreamId,
];

export function targetByName(name: string): FuzzTarget {
  const t = TARGETS.find((x) => x.name === name);
  if (t === undefined) throw new Error(`unknown fuzz target ${name}; known: ${TARGETS.map((x) => x.name).join(', ')}`);
  return t;
}
