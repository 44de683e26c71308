import type { Logger } from 'pino';
import type { TransportStats } from '../core/flow-parts.js';
import type { InputEvents } from '../core/supervised-input.js';
import { TsDemuxer } from '../protocol/mpegts/demuxer.js';
import { RateLimitedLog } from '../telemetry/rate-limited-log.js';
import type { SrtConnection } from './connection.js';

/**
 * What the demuxer saw of the stream, beside the SRT statistics in an input's `transport`:
 * damage SRT could not repair shows here as continuity errors and dropped PES packets.
 */
export function tsInputStats(demuxer: TsDemuxer | undefined): TransportStats {
  if (!demuxer) return {};
  const c = demuxer.counters;
  return { tsContinuityErrors: c.continuityErrors, tsResyncs: c.resyncs, tsPesDropped: c.pesDropped, tsTimestampJumps: c.timestampJumps };
}

/** Feeds an SRT connection's MPEG-TS through a demuxer into input events (FLV tags). */
export function demuxInto(connection: SrtConnection, events: Pick<InputEvents, 'media' | 'data'>, logger: Logger): TsDemuxer {
  // A sender that flips its PMT would otherwise get this warning logged per packet.
  const unusedLog = new RateLimitedLog(logger);
  const demuxer = new TsDemuxer(
    (tag) => {
      if (tag.kind === 'data') events.data(tag.timestamp, tag.payload);
      else events.media(tag.kind, tag.timestamp, tag.payload);
    },
    {
      onUnusedStreams: (streams) => {
        const list = streams.map((s) => ({ pid: s.pid, streamType: `0x${s.streamType.toString(16).padStart(2, '0')}` }));
        unusedLog.warn('unused_streams', { streams: list }, 'MPEG-TS streams not relayed: one H.264 or HEVC video and one AAC (ADTS) audio stream are taken, others (MP2, AC-3, a second track) are left out');
      },
    },
  );
  connection.on('data', (chunk) => demuxer.feed(chunk));
  // The last access unit is only complete at the next PES start, which never comes when
  // the caller leaves: flush it before the connection's other 'closed' listeners run.
  connection.prependOnceListener('closed', () => demuxer.flush());
  return demuxer;
}
