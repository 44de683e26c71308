
import { RtmpClientConnection } from './client/connection.js';
import { RtmpClientError, type RtmpClientEvents, type RtmpClientOptions } from './client/types.js';

/**
 * One supervised connection attempt of an RTMP client. Options are built inside the
 * attempt, so a bad CA file or URL fails that attempt (and is retried and reported) like
 * a refused connection would, instead of throwing out of the supervisor. Events only
 * fire after this returns (they come from socket callbacks), so callers can keep the
 * returned connection and use it in their handlers.
 */
export function startClientAttempt(
  options: () => RtmpClientOptions,
  events: RtmpClientEvents,
  handlers: { closed(error: Error | undefined): void },
): { connection: RtmpClientConnection | undefined; close(reason: string): void; abort(reason: string): void } {
  let connection: RtmpClientConnection;
  try {
    connection = new RtmpClientConnection(options(), events);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    queueMicrotask(() => handlers.closed(new RtmpClientError('CONNECT_FAILED', message)));
    return { connection: undefined, close: () => undefined, abort: () => undefined };
  }
  connection.start();
  return { connection, close: (reason) => connection.close(reason), abort: (reason) => connection.abort(reason) };
}
