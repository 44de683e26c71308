import type { Logger } from 'pino';
import type { Flow } from '../core/flow.js';
import { IDLE_TIMEOUT_REASON } from '../core/input-status.js';
import type { SrtConnection } from './connection.js';
import { srtTransportStats } from './srt-stats.js';
import { demuxInto, tsInputStats } from './ts-input.js';
import type { TsDemuxer } from '../protocol/mpegts/demuxer.js';

/**
 * Makes an accepted SRT caller the publisher of a flow input: its MPEG-TS is demuxed into
 * the hub until it leaves. A busy input (another publisher won the race) closes it. A
 * publisher that sends no media for `idleTimeoutMs` is closed: libsrt's keepalives hold
 * the connection of a frozen encoder (or one sending only null packets) open for ever.
 */
export function attachSrtPublisher(connection: SrtConnection, flow: Flow, inputName: string, idleTimeoutMs: number, logger: Logger): void {
  // The demuxer comes after the input accepts the caller; its counters join the SRT statistics.
  const demux: { demuxer?: TsDemuxer } = {};
  const stats = () => ({ ...srtTransportStats(connection), ...tsInputStats(demux.demuxer) });
  const result = flow.publish(inputName, { kick: () => connection.close() }, connection.peer.address, stats);
  if (!result.ok) {
    logger.warn({ reason: result.reason }, `srt publish refused: ${result.message}`);
    connection.close();
    return;
  }
  const { source } = result;
  let timedOut = false;
  const idleCheck = setInterval(() => {
    if (flow.silentForMs(inputName) < idleTimeoutMs) return;
    timedOut = true;
    logger.warn({ idleTimeoutMs }, 'srt publisher sent no media; closed');
    connection.close();
  }, Math.min(1_000, idleTimeoutMs));
  idleCheck.unref();
  demux.demuxer = demuxInto(connection, {
    media: (kind, timestamp, payload) => {
      try {
        source.push(kind, timestamp, payload);
      } catch (err) {
        // The demuxer emits well-formed tags; a failure here is a bug, contained to this caller.
        logger.error({ err: (err as Error).message }, 'srt publisher closed: bad media');
        connection.close();
      }
    },
    data: (timestamp, payload) => source.pushData(timestamp, payload),
  }, logger);
  connection.once('closed', (error) => {
    clearInterval(idleCheck);
    source.detach(timedOut ? IDLE_TIMEOUT_REASON : (error?.message ?? 'srt publisher left'));
  });
}
