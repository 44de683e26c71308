import type { Logger } from 'pino';
import type { RtmpOutputConfig } from '../config/schema.js';
import type { OutputSink } from '../core/output-feed.js';
import type { OutputAttempt, OutputConnector } from '../core/supervised-output.js';
import type { RtmpClientConnection } from './client/connection.js';
import { describeTarget, parseRtmpUrl } from './client/url.js';
import { startClientAttempt } from './client-attempt.js';
import { clientOptionsFor, type RtmpClientDefaults } from './client-options.js';

/**
 * How an `rtmp` output connects: an RTMP(S) publish with our client. Reconnects, idle
 * handling and the feed are SupervisedOutput's; this only makes connections.
 */
export function rtmpOutputConnector(spec: RtmpOutputConfig, defaults: RtmpClientDefaults, logger: Logger): OutputConnector {
  return {
    target: describeTarget(parseRtmpUrl(spec.url, spec.streamKey)),
    connect(events): OutputAttempt {
      const attempt = startClientAttempt(
        () => clientOptionsFor(spec, 'publish', defaults, logger),
        {
          ready: () => events.ready(sinkFor(attempt.connection!)),
          media: () => undefined,
          metadata: () => undefined,
          data: () => undefined,
          streamEnd: () => undefined,
          closed: (error) => events.closed(error),
        },
        events,
      );
      return { close: (reason) => attempt.close(reason), abort: (reason) => attempt.abort(reason), bytesSent: () => attempt.connection?.bytesOut ?? 0 };
    },
  };
}

function sinkFor(connection: RtmpClientConnection): OutputSink {
  return {
    sendMedia: (kind, timestamp, payload) => {
      connection.sendMedia(kind, timestamp, payload);
      return true; // FLV carries every codec the hub relays.
    },
    sendMetadata: (timestamp, payload) => connection.sendMetadata(timestamp, payload),
    sendData: (timestamp, payload) => connection.sendData(timestamp, payload),
    backlog: () => connection.writableLength,
  };
}
