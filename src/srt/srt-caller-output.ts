import type { SrtCallerOutputConfig } from '../config/schema.js';
import type { OutputAttempt, OutputConnector } from '../core/supervised-output.js';
import type { SrtRuntime } from './runtime.js';
import { srtTransportStats } from './srt-stats.js';
import { parseSrtUrl } from './srt-url.js';
import { TsOverSrtSink } from './ts-sink.js';

/** How an `srt-caller` output connects: an SRT call carrying MPEG-TS made from the hub. */
export function srtCallerOutputConnector(spec: SrtCallerOutputConfig, runtime: SrtRuntime): OutputConnector {
  const { host, port } = parseSrtUrl(spec.url);
  return {
    target: `srt://${host}:${port}`,
    connect(events): OutputAttempt {
      const connection = runtime.call({
        host,
        port,
        latencyMs: spec.latencyMs,
        connectTimeoutMs: spec.connectTimeoutMs,
        ...(spec.streamId !== undefined && { streamId: spec.streamId }),
        ...(spec.passphrase !== undefined && { passphrase: spec.passphrase, pbkeylen: spec.pbkeylen }),
      });
      connection.once('connected', () => events.ready(new TsOverSrtSink(connection, spec.maxBacklog)));
      connection.once('closed', (error) => events.closed(error));
      return { close: () => connection.close(), bytesSent: () => connection.counters.bytesSent, transportStats: () => srtTransportStats(connection) };
    },
  };
}
