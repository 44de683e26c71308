import { z } from 'zod';
import { isRecord } from '../lib/is-record.js';
import { clientTlsSchema, reconnectSchema } from './schema-restream.js';
import { intRange, isHostName, objectName, secretKey } from './schema-parts.js';
import { passphrase } from './schema-srt.js';
import { isIP } from 'node:net';

const flowId = z.string().regex(/^[a-z0-9-]{1,64}$/, 'must be a flow id (1..64 characters of a-z 0-9 -)');

/**
 * An input that reads another flow: of this daemon (in-process: no sockets, no copies),
 * or of another flowrelay node (`node`), through its RTMP playback or SRT.
 */
export const flowInputSchema = z
  .object({
    name: objectName,
    type: z.literal('flow'),
    /** The upstream flow's id. */
    flow: flowId,
    /** An output of the upstream flow that must exist (all outputs of a flow carry the same stream). */
    output: objectName.optional(),
    /** A peer from `peers`: the upstream flow runs on that node. */
    node: objectName.optional(),
    /** The upstream flow's playback key on that node (required with node). */
    key: secretKey.optional(),
    /**
     * With a node reached over SRT: the port of the upstream flow's srt-listener output,
     * instead of the node's shared SRT port (and that output's passphrase, if it has one).
     */
    srtPort: intRange(1, 65_535).optional(),
    passphrase: passphrase.optional(),
    /** Remote only: reconnect settings, and how long a connection may deliver no media. */
    reconnect: reconnectSchema.prefault({}),
    idleTimeoutMs: intRange(1_000, 600_000).default(15_000),
  })
  .strict()
  .superRefine((input, ctx) => {
    if (input.node !== undefined && input.key === undefined) ctx.addIssue({ code: 'custom', path: ['key'], message: "required with node: the upstream flow's playback key on that node" });
  });

/** Another flowrelay node, as cascade inputs reach it. */
export const peerSchema = z
  .object({
    name: objectName,
    /** Its public host name or address. */
    host: z.string().refine((s) => isIP(s) !== 0 || isHostName(s), 'must be a host name or IP address'),
    /** rtmp: play rtmp(s)://host:rtmpPort/live/<key>; srt: request the flow on its shared SRT port. */
    protocol: z.enum(['rtmp', 'srt']).default('rtmp'),
    rtmpPort: intRange(1, 65_535).default(1935),
    /**
     * rtmps:// instead of rtmp:// (the peer's rtmp.tls listener on rtmpPort): `true`, or
     * `{ ca, verify }` as an rtmp-pull's `tls` for a peer whose certificate a private CA signed.
     */
    tls: z.union([z.boolean(), clientTlsSchema], { error: 'must be true, false or { ca, verify }' }).default(false),
    srtPort: intRange(1, 65_535).default(9000),
    /** The SRT passphrase of the peer's playback, if it has one. */
    passphrase: passphrase.optional(),
    /** SRT receive latency from this node: about 4x the round trip to it (a long link needs more than the 120 ms default). */
    latencyMs: intRange(20, 8_000).default(120),
  })
  .strict();

export type FlowInputConfig = z.output<typeof flowInputSchema>;
export type PeerConfig = z.output<typeof peerSchema>;

type AddIssue = (i: { code: 'custom'; path: (string | number)[]; message: string }) => void;

/**
 * Cascade inputs point at flows and peers that exist, and local cascades form no loop
 * (a flow that feeds itself, directly or through others, would echo forever). The loop
 * is named, from the input that closes it.
 */
export function checkCascades(config: unknown, addIssue: AddIssue): void {
  if (!isRecord(config) || !Array.isArray(config.flows)) return;
  const flows = config.flows as unknown[];
  const peers = new Set(Array.isArray(config.peers) ? (config.peers as unknown[]).filter(isRecord).map((p) => p.name) : []);
  const byId = new Map<string, Record<string, unknown>>();
  for (const f of flows) if (isRecord(f) && typeof f.id === 'string') byId.set(f.id, f);
  /** Local upstreams of each flow, with where the input is written. */
  const edges = new Map<string, { to: string; path: (string | number)[] }[]>();
  flows.forEach((f, i) => {
    if (!isRecord(f) || typeof f.id !== 'string' || !Array.isArray(f.inputs)) return;
    (f.inputs as unknown[]).forEach((input, j) => {
      if (!isRecord(input) || input.type !== 'flow' || typeof input.flow !== 'string') return;
      const path = ['flows', i, 'inputs', j];
      if (typeof input.node === 'string') {
        if (!peers.has(input.node)) addIssue({ code: 'custom', path: [...path, 'node'], message: `no peer named "${input.node}" in peers` });
        return;
      }
      const upstream = byId.get(input.flow);
      if (!upstream) {
        addIssue({ code: 'custom', path: [...path, 'flow'], message: `no flow with id "${input.flow}" in this config (for another node's flow, set node)` });
        return;
      }
      if (typeof input.output === 'string') {
        const outputs = Array.isArray(upstream.outputs) ? (upstream.outputs as unknown[]).filter(isRecord).map((o) => o.name) : [];
        if (!outputs.includes(input.output)) addIssue({ code: 'custom', path: [...path, 'output'], message: `flow "${input.flow}" has no output named "${input.output}"` });
      }
      const list = edges.get(f.id as string) ?? [];
      list.push({ to: input.flow, path: [...path, 'flow'] });
      edges.set(f.id as string, list);
    });
  });
  const reported = new Set<string>();
  for (const start of edges.keys()) {
    const loop = findLoop(start, edges);
    if (!loop) continue;
    const key = [...new Set(loop.ids)].sort().join(',');
    if (reported.has(key)) continue;
    reported.add(key);
    addIssue({ code: 'custom', path: loop.path, message: `cascade loop: ${loop.ids.join(' → ')} (a flow may not read itself through other flows)` });
  }
}

/** A cycle back to `start` along local cascade edges, as flow ids and the path of its last edge. */
function findLoop(start: string, edges: Map<string, { to: string; path: (string | number)[] }[]>): { ids: string[]; path: (string | number)[] } | undefined {
  const stack: { id: string; trail: string[] }[] = [{ id: start, trail: [start] }];
  const seen = new Set<string>();
  while (stack.length > 0) {
    const { id, trail } = stack.pop()!;
    for (const edge of edges.get(id) ?? []) {
      if (edge.to === start) return { ids: [...trail, start], path: edge.path };
      if (seen.has(edge.to)) continue;
      seen.add(edge.to);
      stack.push({ id: edge.to, trail: [...trail, edge.to] });
    }
  }
  return undefined;
}
