import type { FlowInputConfig, PeerConfig } from './schema-cascade.js';
import { rtmpPullInputSchema } from './schema-restream.js';
import { srtCallerInputSchema } from './schema-srt.js';
import type { RtmpPullInputConfig, SrtCallerInputConfig } from './schema.js';

/**
 * How a cascade input reaches a flow on another node: an rtmp-pull of the node's RTMP
 * playback (rtmp(s)://host:port/live/<key>), or an SRT call to its shared port asking
 * for the flow (#!::r=<flow>,m=request,s=<key>) or to the flow's srt-listener output.
 * Both reconnect on their own.
 */
export function remoteCascadeSpec(input: FlowInputConfig & { node: string; key: string }, peer: PeerConfig): RtmpPullInputConfig | SrtCallerInputConfig {
  const common = { name: input.name, reconnect: input.reconnect, idleTimeoutMs: input.idleTimeoutMs };
  if (peer.protocol === 'srt') {
    // The shared port routes by the stream id; an srt-listener output (srtPort on the input) serves its flow to any caller.
    const passphrase = input.passphrase ?? peer.passphrase;
    return srtCallerInputSchema.parse({
      ...common,
      type: 'srt-caller',
      url: `srt://${peer.host.includes(':') ? `[${peer.host}]` : peer.host}:${input.srtPort ?? peer.srtPort}`,
      streamId: `#!::r=${input.flow},m=request,s=${input.key}`,
      latencyMs: peer.latencyMs,
      ...(passphrase !== undefined && { passphrase }),
    });
  }
  const host = peer.host.includes(':') ? `[${peer.host}]` : peer.host;
  return rtmpPullInputSchema.parse({
    ...common,
    type: 'rtmp-pull',
    url: `${peer.tls === false ? 'rtmp' : 'rtmps'}://${host}:${peer.rtmpPort}/live`,
    streamKey: input.key,
    ...(typeof peer.tls === 'object' && { tls: peer.tls }),
  });
}
