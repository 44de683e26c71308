import type { Logger } from 'pino';
import type { FlowPartsFactory } from './core/flow-parts.js';
import { SupervisedInput } from './core/supervised-input.js';
import { SupervisedOutput } from './core/supervised-output.js';
import type { Clock } from './lib/clock.js';
import type { RecordingService } from './recording/recording-service.js';
import { ffmpegPullConnector } from './ffmpeg/pull-connector.js';
import { LocalCascadeInput } from './core/local-cascade-input.js';
import { remoteCascadeSpec } from './config/cascade-remote.js';
import type { StreamHub } from './core/stream-hub.js';
import { FlowrelayError } from './lib/errors.js';
import type { RtmpClientDefaults } from './rtmp/client-options.js';
import { rtmpOutputConnector } from './rtmp/rtmp-output.js';
import { rtmpPullConnector } from './rtmp/rtmp-pull-input.js';
import type { SrtRuntime } from './srt/runtime.js';
import { srtCallerInputConnector } from './srt/srt-caller-input.js';
import { srtCallerOutputConnector } from './srt/srt-caller-output.js';
import { SrtListenerOutput } from './srt/srt-listener-output.js';
import { SrtOwnPortInput } from './srt/srt-own-port-input.js';

export interface FlowPartsDeps {
  rtmp: RtmpClientDefaults;
  clock: Clock;
  /** The SRT runtime, opened on first use (libsrt is not loaded unless SRT is configured). */
  srt(): SrtRuntime;
  /** The hub of a flow of this daemon (local cascades). */
  flowHub(flowId: string): StreamHub | undefined;
  /** ffmpeg.path from the running config. */
  ffmpegPath(): string;
  /** The daemon's recordings (opened before any flow starts). */
  recordings(): RecordingService;
}

function needSrt(deps: FlowPartsDeps, _what: string): SrtRuntime {
  return deps.srt();
}

/**
 * The network parts of flows, per protocol: each output and pull input is a supervised
 * connection (reconnects, status, counters) around a protocol connector.
 */
export function flowParts(deps: FlowPartsDeps): FlowPartsFactory {
  return {
    createOutput(spec, hub, logger: Logger) {
      switch (spec.type) {
        case 'rtmp':
          return new SupervisedOutput(spec, hub, rtmpOutputConnector(spec, deps.rtmp, logger), deps.clock, logger);
        case 'srt-caller':
          return new SupervisedOutput(spec, hub, srtCallerOutputConnector(spec, needSrt(deps, 'an srt-caller output'), logger), deps.clock, logger);
        case 'srt-listener':
          return new SrtListenerOutput(spec, hub, needSrt(deps, 'an srt-listener output'), logger);
      }
    },
    createPullInput(spec, hub, logger: Logger) {
      switch (spec.type) {
        case 'rtmp-pull':
          return new SupervisedInput(spec, hub, rtmpPullConnector(spec, deps.rtmp, logger), deps.clock, logger);
        case 'srt-caller':
          return new SupervisedInput(spec, hub, srtCallerInputConnector(spec, needSrt(deps, 'an srt-caller input'), logger), deps.clock, logger);
        case 'pull':
          return new SupervisedInput(spec, hub, ffmpegPullConnector(spec, { ffmpegPath: deps.ffmpegPath, clock: deps.clock }), deps.clock, logger);
        case 'flow': {
          const { node, key, peer } = spec;
          if (node === undefined || key === undefined) return new LocalCascadeInput(spec, hub, (id) => deps.flowHub(id), deps.clock, logger);
          if (!peer) throw new FlowrelayError('INTERNAL', `no peer named ${node} (the config check should have refused this)`);
          return this.createPullInput(remoteCascadeSpec({ ...spec, node, key }, peer), hub, logger);
        }
      }
    },
    createOwnPortInput(spec, flow, logger: Logger) {
      const listen = spec.listen;
      if (listen === undefined) throw new FlowrelayError('INTERNAL', 'createOwnPortInput needs an input with listen');
      return new SrtOwnPortInput({ ...spec, listen }, flow, needSrt(deps, 'an srt-listener input'), logger);
    },
    createRecorder(flowId, spec, hub, logger: Logger) {
      const { format, segmentSeconds, timeoutSeconds, path } = spec;
      return deps.recordings().createRecorder({ flowId, jobId: null, nameInPath: flowId }, { format, segmentSeconds, timeoutSeconds, path }, hub, logger);
    },
  };
}
