import type { PullInputConfig } from '../config/schema-pull.js';
import type { InputConnector, InputEvents } from '../core/supervised-input.js';
import type { Clock } from '../lib/clock.js';
import { ProtocolError } from '../lib/errors.js';
import { FlvStreamReader, type FlvStreamTag } from '../protocol/flv/stream-reader.js';
import { pullArgs, redactSourceUrl } from './args.js';
import { describeExit, FfmpegProcess } from './process.js';

export interface FfmpegPullDeps {
  /** ffmpeg.path from the config. */
  ffmpegPath(): string;
  clock: Clock;
}

/** onMetaData (an AMF0 string marker, length 10, the name) is cached by the hub; other script data is forwarded. */
function isOnMetaData(body: Buffer): boolean {
  return body.length > 13 && body[0] === 0x02 && body.readUInt16BE(1) === 10 && body.toString('latin1', 3, 13) === 'onMetaData';
}

/**
 * A pull input's connection: one ffmpeg reading the source and writing FLV to a pipe.
 * Each connect() is one ffmpeg run; the input's supervisor restarts it with backoff and
 * its idle watchdog stops a run that delivers nothing. The last stderr lines of the last
 * run stay readable for the status API.
 */
export function ffmpegPullConnector(spec: PullInputConfig, deps: FfmpegPullDeps): InputConnector {
  let lastLog: string[] = [];
  let current: FfmpegProcess | undefined;
  return {
    target: redactSourceUrl(spec.url),
    recentLog: () => current?.log() ?? lastLog,
    connect(events: InputEvents) {
      const reader = new FlvStreamReader();
      let bytes = 0;
      let ready = false;
      let failure: Error | undefined;
      // The input's idle watchdog covers a run once media flows; this covers one that never
      // produces any (a source that accepts and then sends too little for ffmpeg to start).
      const startTimer = deps.clock.setTimeout(() => {
        if (ready) return;
        failure = new Error(`no media from ffmpeg within ${spec.idleTimeoutMs} ms of starting`);
        proc.stop();
      }, spec.idleTimeoutMs);
      const deliver = (tag: FlvStreamTag) => {
        if (!ready) {
          ready = true;
          deps.clock.clearTimeout(startTimer);
          events.ready();
        }
        if (tag.type === 9) events.media('video', tag.timestamp, tag.body);
        else if (tag.type === 8) events.media('audio', tag.timestamp, tag.body);
        else if (tag.type === 18) (isOnMetaData(tag.body) ? events.metadata : events.data)(tag.timestamp, tag.body);
      };
      const proc = new FfmpegProcess({
        path: deps.ffmpegPath(),
        args: pullArgs(spec),
        secrets: [spec.url],
        clock: deps.clock,
        stdout: (chunk) => {
          bytes += chunk.length;
          if (failure) return;
          try {
            for (const tag of reader.push(chunk)) deliver(tag);
          } catch (err) {
            if (!(err instanceof ProtocolError)) throw err;
            failure = err;
            proc.kill();
          }
        },
        exit: (result) => {
          deps.clock.clearTimeout(startTimer);
          lastLog = result.log;
          if (current === proc) current = undefined;
          events.closed(result.stopped && !failure ? undefined : new Error(describeExit(result, failure)));
        },
      });
      current = proc;
      proc.start();
      return {
        close: () => proc.stop(),
        bytesReceived: () => bytes,
      };
    },
  };
}
