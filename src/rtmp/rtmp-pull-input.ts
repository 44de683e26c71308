import type { Logger } from 'pino';
import type { RtmpPullInputConfig } from '../config/schema.js';
import type { InputAttempt, InputConnector } from '../core/supervised-input.js';
import { describeTarget, parseRtmpUrl } from './client/url.js';
import { startClientAttempt } from './client-attempt.js';
import { clientOptionsFor, type RtmpClientDefaults } from './client-options.js';

/** How an `rtmp-pull` input connects: an RTMP(S) play with our client. */
export function rtmpPullConnector(spec: RtmpPullInputConfig, defaults: RtmpClientDefaults, logger: Logger): InputConnector {
  return {
    target: describeTarget(parseRtmpUrl(spec.url, spec.streamKey)),
    connect(events): InputAttempt {
      const attempt = startClientAttempt(() => clientOptionsFor(spec, 'play', defaults, logger), events, events);
      return { close: (reason) => attempt.close(reason), bytesReceived: () => attempt.connection?.bytesIn ?? 0 };
    },
  };
}
