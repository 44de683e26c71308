/**
 * Valid inputs for every fuzz target, made by the real encoders: ffmpeg for the media
 * (a 1 s 160x90 H.264/AAC FLV and MPEG-TS, and an HEVC/AAC MPEG-TS) and the project's own
 * encoders for RTMP chunks, commands and AMF0. The mutators (mutate.ts) start from these,
 * so most fuzz inputs get past the outer framing into the deep parsing code.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseFlv, type FlvFileTag } from '../helpers/flv-file.js';
import { encodeAmf0, type AmfObject, type AmfValue } from '../../src/protocol/amf/amf0.js';
import { TsDemuxer } from '../../src/protocol/mpegts/demuxer.js';
import type { FlvTag } from '../../src/protocol/mpegts/types.js';
import { encodeChunks, type OutgoingMessage } from '../../src/protocol/rtmp/chunk-encoder.js';
import { ClientHandshake } from '../../src/protocol/rtmp/client-handshake.js';
import { encodeCommand } from '../../src/protocol/rtmp/command.js';
import { HANDSHAKE_SIZE, ServerHandshake } from '../../src/protocol/rtmp/handshake.js';
import { MessageType, UserControlEvent } from '../../src/protocol/rtmp/message-types.js';
import { parseVideoTag } from '../../src/protocol/flv/tag.js';
import { encodeMuxRecord } from './targets.js';

const execFileAsync = promisify(execFile);

export interface MediaFiles {
  /** H.264 + AAC in FLV (ffmpeg's legacy FLV headers). */
  flv: Buffer;
  /** H.264 + AAC in MPEG-TS. */
  h264Ts: Buffer;
  /** HEVC + AAC in MPEG-TS. */
  hevcTs: Buffer;
}

const LAVFI = ['-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100', '-t', '1'];
const AUDIO = ['-c:a', 'aac', '-b:a', '64k'];

/** One second of 160x90 video with a keyframe every 10 frames (so the seeds hold several GOPs). */
export async function makeMediaFiles(): Promise<MediaFiles> {
  const dir = await mkdtemp(join(tmpdir(), 'flowrelay-fuzz-'));
  try {
    const ff = (args: string[]): Promise<unknown> => execFileAsync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', ...LAVFI, ...args]);
    const h264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', '10', '-bf', '2'];
    await Promise.all([
      ff([...h264, ...AUDIO, '-f', 'flv', '-y', join(dir, 'a.flv')]),
      ff([...h264, ...AUDIO, '-f', 'mpegts', '-y', join(dir, 'a.ts')]),
      ff(['-c:v', 'libx265', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-x265-params', 'log-level=none:keyint=10', ...AUDIO, '-f', 'mpegts', '-y', join(dir, 'h.ts')]),
    ]);
    const [flv, h264Ts, hevcTs] = await Promise.all(['a.flv', 'a.ts', 'h.ts'].map((f) => readFile(join(dir, f))));
    return { flv: flv!, h264Ts: h264Ts!, hevcTs: hevcTs! };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export type SeedSet = Record<string, Buffer[]>;

const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0, 0);
  return b;
};

function chunked(m: OutgoingMessage, chunkSize: number): Buffer {
  return encodeChunks(m, chunkSize);
}

/** The FLV tags of a file re-framed as they sit in an aggregate message (header, body, back pointer). */
function flvTagBytes(tags: readonly FlvFileTag[], base = 0): Buffer {
  return Buffer.concat(
    tags.map((t) => {
      const h = Buffer.alloc(11);
      const ts = (t.timestamp - base) >>> 0;
      h[0] = t.type;
      h.writeUIntBE(t.body.length, 1, 3);
      h.writeUIntBE(ts & 0xffffff, 4, 3);
      h[7] = ts >>> 24;
      return Buffer.concat([h, t.body, u32(11 + t.body.length)]);
    }),
  );
}

const CONNECT: AmfObject = { app: 'live', type: 'nonprivate', flashVer: 'FMLE/3.0 (compatible; FMSc/1.0)', tcUrl: 'rtmp://127.0.0.1:1935/live', fpad: false, capabilities: 15, audioCodecs: 4071, videoCodecs: 252, videoFunction: 1, objectEncoding: 0 };

function commandPayloads(): Buffer[] {
  const cmd = (name: string, transactionId: number, commandObject: AmfValue, ...args: AmfValue[]): Buffer => encodeCommand({ name, transactionId, commandObject, args });
  return [
    cmd('connect', 1, CONNECT),
    cmd('releaseStream', 2, null, 'streamkey'),
    cmd('FCPublish', 3, null, 'streamkey'),
    cmd('createStream', 4, null),
    cmd('publish', 5, null, 'streamkey', 'live'),
    cmd('play', 4, null, 'playkey', -2000, -1, true),
    cmd('_result', 1, { fmsVer: 'FMS/3,0,1,123', capabilities: 31 }, { level: 'status', code: 'NetConnection.Connect.Success', description: 'ok', objectEncoding: 0 }),
    cmd('onStatus', 0, null, { level: 'status', code: 'NetStream.Publish.Start', description: 'x', details: { nested: [1, 'two', null, undefined, new Date(0)] } }),
  ];
}

/** A hand-written ECMA array (marker 0x08, count hint, properties, 00 00 09), as ffmpeg writes onMetaData. */
function ecmaArray(props: Record<string, AmfValue>): Buffer {
  const obj = encodeAmf0([props as AmfObject]);
  // encodeAmf0 writes objects (0x03 ... 00 00 09); an ECMA array is the same body after a count.
  return Buffer.concat([Buffer.from([0x08]), u32(Object.keys(props).length), obj.subarray(1)]);
}

function amfPayloads(metadata: Buffer | undefined): Buffer[] {
  let deep: AmfValue = 'leaf';
  for (let i = 0; i < 15; i++) deep = i % 2 === 0 ? { level: i, child: deep } : [i, deep];
  return [
    encodeAmf0([1.5, true, 'str', null, undefined, new Date(1_700_000_000_000), [1, 2, 3], { a: { b: { c: 'd' } }, '': 'empty key' }]),
    encodeAmf0([deep]),
    encodeAmf0(['x'.repeat(70_000)]), // a long string (0x0C)
    encodeAmf0([Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? i : i % 3 === 1 ? `s${i}` : { i }))]),
    Buffer.concat([encodeAmf0(['onMetaData']), ecmaArray({ width: 160, height: 90, framerate: 25, encoder: 'Lavf59', stereo: true })]),
    ...(metadata === undefined ? [] : [metadata]),
  ];
}

/** Minimal enhanced RTMP and legacy tag headers ffmpeg 5 does not write (E-RTMP v2). */
function enhancedTags(): Buffer[] {
  const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
  const fourcc = (s: string): string => Buffer.from(s, 'latin1').toString('hex');
  return [
    hex(`90 ${fourcc('av01')} 81 00 0c 00 0a 0b 00 00 00 42 ab bf c3 71`), // av01 SequenceStart
    hex(`91 ${fourcc('av01')} 12 00 0a 0b`), // av01 CodedFrames
    hex(`93 ${fourcc('hvc1')} 00 00 00 05 26 01 af 00`), // hvc1 CodedFramesX
    hex(`97 00 ab 01 ${fourcc('hvc1')} 00 00 00`), // ModEx around CodedFrames
    hex(`96 00 ${fourcc('avc1')} 00 00 00 05 00 00 00 01 65`), // multitrack, one track
    hex(`96 20 ${fourcc('avc1')} 00 00 00 09 01 00 00 00 05 ${fourcc('hvc1')} 01`), // many tracks, many codecs
    hex(`94 ${fourcc('vp09')} 02 00 0a 6f 6e 4d 65 74 61 44 61 74 61`), // Metadata
    hex(`d0 00`), // enhanced command frame
    hex(`90 ${fourcc('Opus')} 4f 70 75 73 48 65 61 64 01 02 38 01`), // Opus sequence start (audio)
    hex(`95 10 ${fourcc('mp4a')} 00 00 05 12 10 56 e5 00`), // audio multitrack
    hex(`97 00 01 01 ${fourcc('fLaC')} 00`), // audio ModEx
    hex(`57 01`), // legacy AVC command frame
    hex(`1c 00 00 00 00 01 01 60 00 00 00`), // legacy HEVC (CodecID 12) header
    hex(`2f 01`), // MP3 8 kHz
  ];
}

/** The TS demuxer's output for a TS file: enhanced 'hvc1' tags for HEVC, legacy for H.264. */
function demuxTags(ts: Buffer): FlvTag[] {
  const tags: FlvTag[] = [];
  const d = new TsDemuxer((t) => tags.push({ ...t, payload: Buffer.from(t.payload) }));
  d.feed(ts);
  d.flush();
  return tags;
}

const PKT = 188;

export function buildSeeds(media: MediaFiles): SeedSet {
  const flv = parseFlv(media.flv);
  const av = flv.tags.filter((t) => t.type === 8 || t.type === 9);
  const script = flv.tags.find((t) => t.type === 18);
  const firstAv = av.slice(0, 14);
  const videoTags = av.filter((t) => t.type === 9);
  const audioTags = av.filter((t) => t.type === 8);

  // --- RTMP chunk streams, as a publisher sends them -------------------------------------
  const publisherStream = (chunkSize: number, tags: readonly FlvFileTag[], tsOffset = 0, csidShift = 0): Buffer => {
    const parts: Buffer[] = [];
    if (chunkSize !== 128) parts.push(chunked({ csid: 2, typeId: MessageType.SetChunkSize, streamId: 0, timestamp: 0, payload: u32(chunkSize) }, 128));
    const [connect, release, fcpublish, create, publish] = commandPayloads();
    for (const payload of [connect!, release!, fcpublish!, create!]) parts.push(chunked({ csid: 3, typeId: MessageType.CommandAmf0, streamId: 0, timestamp: 0, payload }, chunkSize));
    parts.push(chunked({ csid: 3 + csidShift, typeId: MessageType.CommandAmf0, streamId: 1, timestamp: 0, payload: publish! }, chunkSize));
    if (script) {
      const payload = Buffer.concat([encodeAmf0(['@setDataFrame']), script.body]);
      parts.push(chunked({ csid: 5 + csidShift, typeId: MessageType.DataAmf0, streamId: 1, timestamp: tsOffset, payload }, chunkSize));
    }
    for (const t of tags) {
      parts.push(chunked({ csid: (t.type === 8 ? 4 : 6) + csidShift, typeId: t.type, streamId: 1, timestamp: t.timestamp + tsOffset, payload: t.body }, chunkSize));
    }
    return Buffer.concat(parts);
  };

  // A video message cut into 128-byte chunks with a whole audio message after its first chunk.
  const keyframe = videoTags.find((t) => parseVideoTag(t.body).isKeyframe) ?? videoTags[0]!;
  const videoWire = chunked({ csid: 6, typeId: MessageType.Video, streamId: 1, timestamp: 40, payload: keyframe.body }, 128);
  const audioWire = chunked({ csid: 4, typeId: MessageType.Audio, streamId: 1, timestamp: 40, payload: audioTags[1]!.body }, 128);
  const interleaved = Buffer.concat([videoWire.subarray(0, 12 + 128), audioWire, videoWire.subarray(12 + 128)]);

  const controlMessages = [
    chunked({ csid: 2, typeId: MessageType.WindowAckSize, streamId: 0, timestamp: 0, payload: u32(2_500_000) }, 128),
    chunked({ csid: 2, typeId: MessageType.UserControl, streamId: 0, timestamp: 0, payload: Buffer.concat([Buffer.from([0, UserControlEvent.PingRequest]), u32(1234)]) }, 128),
    chunked({ csid: 2, typeId: MessageType.UserControl, streamId: 0, timestamp: 0, payload: Buffer.concat([Buffer.from([0, UserControlEvent.SetBufferLength]), u32(1), u32(3000)]) }, 128),
    chunked({ csid: 3, typeId: MessageType.CommandAmf3, streamId: 0, timestamp: 0, payload: Buffer.concat([Buffer.from([0]), commandPayloads()[3]!]) }, 128),
    chunked({ csid: 5, typeId: MessageType.DataAmf3, streamId: 1, timestamp: 0, payload: Buffer.concat([Buffer.from([0]), encodeAmf0(['onTextData', { text: 'hi' }])]) }, 128),
    chunked({ csid: 6, typeId: MessageType.Aggregate, streamId: 1, timestamp: 0xfffffff0, payload: flvTagBytes(firstAv.slice(0, 6), firstAv[0]!.timestamp) }, 128),
    chunked({ csid: 2, typeId: MessageType.Abort, streamId: 0, timestamp: 0, payload: u32(6) }, 128),
    chunked({ csid: 2, typeId: MessageType.Acknowledgement, streamId: 0, timestamp: 0, payload: u32(99) }, 128),
  ];
  const controlWire = Buffer.concat(controlMessages);

  const rtmpChunks = [
    publisherStream(4096, firstAv),
    publisherStream(128, firstAv.slice(0, 8)),
    publisherStream(60_000, firstAv, 0xfffff0), // crosses into extended timestamps
    publisherStream(4096, firstAv.slice(0, 8), 0xffffff00), // wraps the 32-bit clock
    publisherStream(1000, firstAv.slice(0, 8), 0, 300), // 2- and 3-byte chunk stream ids
    interleaved,
    controlWire,
  ];

  // --- Handshakes ------------------------------------------------------------------------
  const plainC1 = Buffer.alloc(HANDSHAKE_SIZE, 0x5a);
  plainC1.writeUInt32BE(0, 4);
  const client = new ClientHandshake(() => 1000);
  const digestC0C1 = client.start();
  const c2 = Buffer.alloc(HANDSHAKE_SIZE, 0xc2);
  const afterHandshake = publisherStream(4096, firstAv.slice(0, 3));
  const rtmpHandshake = [
    Buffer.concat([Buffer.from([3]), plainC1, c2, afterHandshake]),
    Buffer.concat([digestC0C1, c2, afterHandshake]),
    Buffer.concat([digestC0C1, c2]),
    Buffer.concat([Buffer.from([3]), plainC1]),
  ];

  const serverAnswer = (c0c1: Buffer): Buffer => {
    const progress = new ServerHandshake(() => 2000).feed(c0c1);
    return progress.output!;
  };
  const serverTail = Buffer.concat([...controlMessages.slice(0, 3), chunked({ csid: 3, typeId: MessageType.CommandAmf0, streamId: 0, timestamp: 0, payload: commandPayloads()[6]! }, 128)]);
  const rtmpClientHandshake = [
    Buffer.concat([serverAnswer(digestC0C1), serverTail]),
    Buffer.concat([serverAnswer(Buffer.concat([Buffer.from([3]), plainC1])), serverTail]),
    serverAnswer(digestC0C1),
  ];

  // --- Commands, AMF0, aggregates, user control -------------------------------------------
  const metadataPayload = script ? Buffer.concat([encodeAmf0(['@setDataFrame']), script.body]) : undefined;
  const rtmpCommand = [...commandPayloads(), Buffer.concat([Buffer.from([0]), commandPayloads()[0]!]), ...(metadataPayload ? [metadataPayload, script!.body] : [])];
  const amf0 = amfPayloads(script?.body);
  const rtmpAggregate = [
    flvTagBytes(firstAv.slice(0, 6), firstAv[0]!.timestamp),
    flvTagBytes(flv.tags.slice(0, 10)),
    flvTagBytes(av.slice(20, 26)),
  ];
  const uc = (event: number, ...values: number[]): Buffer => Buffer.concat([Buffer.from([0, event]), ...values.map(u32)]);
  const rtmpControl = [uc(0, 1), uc(1, 1), uc(2, 1), uc(3, 1, 3000), uc(4, 1), uc(6, 123456), uc(7, 123456), uc(31, 7)];

  // --- FLV tag bodies ----------------------------------------------------------------------
  const hevcTags = demuxTags(media.hevcTs);
  const avcHeader = videoTags.find((t) => parseVideoTag(t.body).isSequenceHeader)!;
  const flvTagSeeds = [
    avcHeader.body,
    avcHeader.body.subarray(5), // the bare AVCDecoderConfigurationRecord
    keyframe.body.subarray(0, 64),
    videoTags[3]!.body.subarray(0, 64),
    audioTags[0]!.body,
    audioTags[1]!.body.subarray(0, 32),
    ...hevcTags.filter((t) => t.kind === 'video').slice(0, 3).map((t) => t.payload.subarray(0, 96)),
    ...enhancedTags(),
  ];

  // --- MPEG-TS -------------------------------------------------------------------------------
  const mpegtsDemux = [
    media.h264Ts.subarray(0, 120 * PKT),
    media.hevcTs.subarray(0, 120 * PKT),
    media.h264Ts.subarray(60 * PKT, 200 * PKT), // joins mid-stream: no PAT/PMT first
    media.h264Ts,
  ];

  const records = (tags: readonly { kind: 'audio' | 'video' | 'data'; timestamp: number; payload: Buffer }[], tsOffset = 0): Buffer =>
    Buffer.concat(
      tags.map((t) => {
        const info = t.kind === 'video' ? parseVideoTag(t.payload) : undefined;
        const isSequenceHeader = info?.isSequenceHeader ?? (t.kind === 'audio' && t.payload[1] === 0);
        return encodeMuxRecord({ kind: t.kind, timestamp: t.timestamp + tsOffset, payload: t.payload, isKeyframe: info?.isKeyframe ?? false, isSequenceHeader });
      }),
    );
  const asTags = (tags: readonly FlvFileTag[]): { kind: 'audio' | 'video' | 'data'; timestamp: number; payload: Buffer }[] =>
    tags.map((t) => ({ kind: t.type === 8 ? 'audio' : t.type === 9 ? 'video' : 'data', timestamp: t.timestamp, payload: t.body }));
  const mpegtsMux = [
    records(asTags(flv.tags.slice(0, 30))),
    records(asTags(av.slice(0, 30)), 0xfffffff0), // 32-bit ms wrap, 33-bit 90 kHz wrap
    records(hevcTags.slice(0, 30)),
    records(asTags(av.slice(0, 3).concat(av.slice(40, 60)))), // a header, then frames from the middle
  ];

  const srtStreamId = [
    '#!::r=studio-a,m=publish,s=secret-key',
    '#!::u=alice,r=flow-1,m=request,s=play,h=relay.example.com,t=stream',
    'studio-a',
    '#!::r=a',
    `#!::r=${'a'.repeat(64)},s=${'k'.repeat(400)}`,
  ].map((s) => Buffer.from(s, 'utf8'));

  return {
    'rtmp-chunks': rtmpChunks,
    'rtmp-handshake': rtmpHandshake,
    'rtmp-client-handshake': rtmpClientHandshake,
    'rtmp-command': rtmpCommand,
    amf0,
    'rtmp-aggregate': rtmpAggregate,
    'rtmp-control': rtmpControl,
    'flv-tag': flvTagSeeds,
    'mpegts-demux': mpegtsDemux,
    'mpegts-mux': mpegtsMux,
    'srt-stream-id': srtStreamId,
  };
}
