import type { FlowRegistry } from '../core/flow-registry.js';
import type { Flow, SrtListenerInputSpec } from '../core/flow.js';
import { keysMatch } from '../policy/keys.js';
import { parseStreamId } from '../protocol/srt/stream-id.js';
import { SrtReject, type SrtAcceptDecision } from './types.js';

export type SrtRoute = { kind: 'publish'; flow: Flow; input: SrtListenerInputSpec } | { kind: 'play'; flow: Flow };

export type SrtRouting = { ok: true; route: SrtRoute; decision: SrtAcceptDecision & { accept: true } } | { ok: false; reason: number; why: string };

/**
 * Whether a caller may publish to an SRT listener input: with the input's key (`s=`), or
 * without one only when a passphrase guards the input (libsrt then rejects a wrong
 * passphrase itself, during the handshake).
 */
export function admitPublisher(key: string | undefined, input: SrtListenerInputSpec): SrtRouting | undefined {
  if (key === undefined ? input.passphrase === undefined : !keysMatch(key, input.streamKey)) {
    return { ok: false, reason: SrtReject.Unauthorized, why: key === undefined ? 'stream key required' : 'wrong stream key' };
  }
  return undefined;
}

/** The handshake settings an accepted publisher gets from its input. */
export function publisherDecision(input: SrtListenerInputSpec): SrtAcceptDecision & { accept: true } {
  return {
    accept: true,
    latencyMs: input.latencyMs,
    ...(input.passphrase !== undefined && { passphrase: input.passphrase, pbkeylen: input.pbkeylen }),
  };
}

/**
 * Routes a caller on the shared SRT port by its stream id: publish to a flow's
 * srt-listener input (one without a port of its own), or play a flow with its playback
 * key. Decided inside the handshake, so it must stay cheap and synchronous.
 */
export function routeSharedPort(streamId: string, peerAddress: string, registry: FlowRegistry): SrtRouting {
  const parsed = parseStreamId(streamId);
  if (!parsed.ok) return { ok: false, reason: SrtReject.BadRequest, why: parsed.reason };
  const { flowId, mode, key } = parsed.request;
  const flow = registry.get(flowId);
  if (!flow || !flow.spec.enabled) return { ok: false, reason: SrtReject.NotFound, why: 'unknown flow' };
  if (mode === 'request') {
    if (key === undefined || !keysMatch(key, flow.spec.playbackKey)) return { ok: false, reason: SrtReject.Unauthorized, why: 'wrong playback key' };
    return { ok: true, route: { kind: 'play', flow }, decision: { accept: true } };
  }
  const shared = flow.spec.inputs.filter((i): i is SrtListenerInputSpec => i.type === 'srt-listener' && i.listen === undefined);
  // With a primary and a backup on the shared port, the key says which one is calling.
  const input = shared.find((i) => key !== undefined && keysMatch(key, i.streamKey)) ?? shared[0];
  if (!input) return { ok: false, reason: SrtReject.NotFound, why: 'flow has no SRT input on the shared port' };
  if (!flow.admitsAddress(peerAddress)) return { ok: false, reason: SrtReject.Forbidden, why: 'address not allowed for this flow' };
  const refused = admitPublisher(key, input);
  if (refused) return refused;
  if (!flow.makeRoomForPublisher(input.name)) return { ok: false, reason: SrtReject.Conflict, why: 'input already has a live publisher' };
  return { ok: true, route: { kind: 'publish', flow, input }, decision: publisherDecision(input) };
}
