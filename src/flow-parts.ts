import type { Logger } from 'pino';
import type { FlowPartsFactory } from './core/flow-parts.js';
import { SupervisedInput } from './core/supervised-input.js';
import { SupervisedOutput } from './core/supervised-output.js';
import type { Clock } from './lib/clock.js';
import { FlowrelayError } from './lib/errors.js';
import type { RtmpClientDefaults } from './rtmp/client-options.js';
import { rtmpOutputConnector } from './rtmp/rtmp-output.js';
import { rtmpPullConnector } from './rtmp/rtmp-pull-input.js';

export interface FlowPartsDeps {
  rtmp: RtmpClientDefaults;
  clock: Clock;
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
        default:
          throw new FlowrelayError('OUTPUT_UNAVAILABLE', `output type ${spec.type} is not available`);
      }
    },
    createPullInput(spec, hub, logger: Logger) {
      switch (spec.type) {
        case 'rtmp-pull':
          return new SupervisedInput(spec, hub, rtmpPullConnector(spec, deps.rtmp, logger), deps.clock, logger);
        default:
          throw new FlowrelayError('INPUT_UNAVAILABLE', `input type ${spec.type} is not available`);
      }
    },
  };
}
