import type { FlowRegistry } from '../core/flow-registry.js';
import type { RtmpRouter } from './session.js';

/**
 * Publish and play decisions for RTMP sessions, taken against the running flows. A key no
 * flow has is a refusal of the listener's (`countRefusal`), as SRT's unknown flow is;
 * refusals by a flow's own rules are counted by the flow.
 */
export function registryRouter(registry: FlowRegistry, countRefusal: (reason: 'unknown_key') => void = () => undefined): RtmpRouter {
  return {
    publish({ streamKey, remoteAddress, owner }) {
      const target = streamKey ? registry.findPublishTarget(streamKey) : undefined;
      if (!target) {
        countRefusal('unknown_key');
        return { ok: false, reason: 'unknown_key', message: 'unknown stream key' };
      }
      const result = target.flow.publish(target.inputName, owner, remoteAddress);
      if (!result.ok) return result;
      return { ok: true, flowId: target.flow.id, inputName: target.inputName, source: result.source };
    },
    play({ playbackKey }) {
      const flow = playbackKey ? registry.findPlayTarget(playbackKey) : undefined;
      if (!flow) {
        countRefusal('unknown_key');
        return { ok: false, reason: 'unknown_key', message: 'unknown playback key' };
      }
      if (!flow.spec.enabled) return { ok: false, reason: 'disabled', message: 'flow is disabled' };
      return { ok: true, flowId: flow.id, hub: flow.hub };
    },
  };
}
