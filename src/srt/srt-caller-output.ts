import type { Logger } from 'pino';
import type { SrtCallerOutputConfig } from '../config/schema.js';
import type { OutputAttempt, OutputConnector } from '../core/supervised-output.js';
import type { SrtRuntime } from './runtime.js';
import { srtTransportStats } from './srt-stats.js';
import { callOptionsFor } from './srt-url.js';
import { TsOverSrtSink, warnLeftOut } from './ts-sink.js';

/** How an `srt-caller` output connects: an SRT call carrying MPEG-TS made from the hub. */
export function srtCallerOutputConnector(spec: SrtCallerOutputConfig, runtime: SrtRuntime, logger: Logger): OutputConnector {
  const { target, options } = callOptionsFor(spec);
  return {
    target,
    connect(events): OutputAttempt {
      const connection = runtime.call(options);
      connection.once('connected', () => events.ready(new TsOverSrtSink(connection, spec.maxBacklog, warnLeftOut(logger))));
      connection.once('closed', (error) => events.closed(error));
      return { close: () => connection.close(), bytesSent: () => connection.counters.bytesSent, transportStats: () => srtTransportStats(connection) };
    },
  };
}
