import type { FlowPartsFactory } from '../core/flow-parts.js';
import type { Clock } from '../lib/clock.js';
import type { RtmpClientDefaults } from './client-options.js';
import { RtmpOutput } from './rtmp-output.js';
import { RtmpPullInput } from './rtmp-pull-input.js';

/** The network parts of flows, as far as RTMP provides them. */
export function rtmpFlowParts(defaults: RtmpClientDefaults, clock: Clock): FlowPartsFactory {
  return {
    createOutput: (spec, hub, logger) => new RtmpOutput(spec, hub, defaults, clock, logger),
    createPullInput: (spec, hub, logger) => new RtmpPullInput(spec, hub, defaults, clock, logger),
  };
}
