import type { Logger } from 'pino';
import type { SrtCallerInputConfig } from '../config/schema.js';
import type { InputAttempt, InputConnector } from '../core/supervised-input.js';
import type { SrtRuntime } from './runtime.js';
import { srtTransportStats } from './srt-stats.js';
import { callOptionsFor } from './srt-url.js';
import { demuxInto, tsInputStats } from './ts-input.js';

/** How an `srt-caller` input connects: an SRT call whose MPEG-TS becomes the flow's source. */
export function srtCallerInputConnector(spec: SrtCallerInputConfig, runtime: SrtRuntime, logger: Logger): InputConnector {
  const { target, options } = callOptionsFor(spec);
  return {
    target,
    connect(events): InputAttempt {
      const connection = runtime.call(options);
      const demuxer = demuxInto(connection, events, logger);
      connection.once('connected', () => events.ready());
      connection.once('closed', (error) => events.closed(error));
      return { close: () => connection.close(), bytesReceived: () => connection.counters.bytesReceived, transportStats: () => ({ ...srtTransportStats(connection), ...tsInputStats(demuxer) }) };
    },
  };
}
