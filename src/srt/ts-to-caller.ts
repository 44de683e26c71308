import { OutputFeed } from '../core/output-feed.js';
import type { StreamHub } from '../core/stream-hub.js';
import type { SrtConnection } from './connection.js';
import type { Logger } from 'pino';
import { TsOverSrtSink, warnLeftOut } from './ts-sink.js';

/**
 * Serves a flow to one SRT caller that pulls from us (an srt-listener output's caller, a
 * player on the shared port): its own feed and muxer, starting from a keyframe, until
 * the caller leaves or the flow closes.
 */
export function serveTsToCaller(connection: SrtConnection, hub: StreamHub, maxBacklogBytes: number, logger: Logger): OutputFeed {
  const feed = new OutputFeed(hub, maxBacklogBytes, {
    sourceLive: () => undefined,
    sourceGone: () => undefined,
    hubClosed: () => connection.close(),
  });
  feed.start();
  feed.attach(new TsOverSrtSink(connection, maxBacklogBytes, warnLeftOut(logger)));
  connection.once('closed', () => feed.stop());
  return feed;
}
