import type { FlowRegistry } from '../core/flow-registry.js';
import type { RtmpRouter } from './session.js';

/** Publish and play decisions for RTMP sessions, taken against the running flows. */
export function registryRouter(registry: FlowRegistry): RtmpRouter {
  return {
    publish({ streamKey, remoteAddress, owner }) {
      const target = streamKey ? registry.findPublishTarget(streamKey) : undefined;
      if (!target) return { ok: false, reason: 'unknown_key', message: 'unknown stream key' };
      const result = target.flow.publish(target.inputName, owner, remoteAddress);
      if (!result.ok) return result;
      return { ok: true, flowId: target.flow.id, inputName: target.inputName, source: result.source };
    },
    play({ playbackKey }) {
      const flow = playbackKey ? registry.findPlayTarget(playbackKey) : undefined;
      if (!flow) return { ok: false, reason: 'unknown_key', message: 'unknown playback key' };
      if (!flow.spec.enabled) return { ok: false, reason: 'disabled', message: 'flow is disabled' };
      return { ok: true, flowId: flow.id, hub: flow.hub };
    },
  };
}
