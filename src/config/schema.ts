import { isIP } from 'node:net';
import { z } from 'zod';
import { formatPath } from './path.js';
import { isRecord } from '../lib/is-record.js';
import { cidrList, intRange, isHostName, listen, listenerAccess, nonEmpty, objectName, parseListen, quantity, secretKey } from './schema-parts.js';
import { MAX_OUTPUTS_PER_FLOW_CEILING, rtmpOutputSchema, rtmpPullInputSchema } from './schema-restream.js';
import { apiSectionSchema } from './schema-api.js';
import { webhooksSchema } from './schema-webhooks.js';
import { recordingSchema, recordJobsSchema, storageSchema } from './schema-recording.js';
import { pullInputSchema } from './schema-pull.js';
import { checkTasks, taskSchema } from './schema-tasks.js';
import { checkCascades, flowInputSchema, peerSchema } from './schema-cascade.js';
import { srtCallerInputSchema, srtCallerOutputSchema, srtListenerInputSchema, srtListenerOutputSchema, srtSectionSchema } from './schema-srt.js';

export { parseListen } from './schema-parts.js';

/*
 * The one schema for the config file, also meant to validate API bodies, so it holds
 * every rule that can be checked from the document alone. Things that need the file
 * system or the environment (relative paths, ${ENV}, generated keys) live in load.ts,
 * env.ts and secrets.ts. Every object is strict: a typo in a key must fail loudly, not
 * silently fall back to a default.
 */

const rtmpTlsSchema = z
  .object({
    listen: listen('0.0.0.0:1936'),
    cert: nonEmpty,
    key: nonEmpty,
  })
  .strict();

const rtmpSchema = z
  .object({
    listen: listen('0.0.0.0:1935'),
    tls: rtmpTlsSchema.optional(),
    chunkSize: intRange(128, 65536).default(65536),
    maxMessageSize: quantity('bytes', [1024, '1Ki'], [64 * 1024 * 1024, '64Mi']).default(8 * 1024 * 1024),
    handshakeTimeoutMs: intRange(1000, 120_000).default(10_000),
    idleTimeoutMs: intRange(1000, 600_000).default(15_000),
    /** Bytes a player may have queued before it skips to the next keyframe. */
    maxPlayerBacklog: quantity('bytes', [64 * 1024, '64Ki'], [256 * 1024 * 1024, '256Mi']).default(8 * 1024 * 1024),
    /**
     * 0 (default): every message goes to every player at once. N > 0: players' writes are
     * merged and flushed every N ms: fewer system calls for at most N ms more delay.
     */
    mergeWritesMs: intRange(0, 1_000).default(0),
    /** Largest chunk size a peer may set (bigger chunks only make a peer's messages harder to interleave). */
    maxChunkSize: quantity('bytes', [128, '128'], [0x7fffffff, '2Gi']).default(16 * 1024 * 1024),
    /** Connections at once, in total and from one address; more are refused at accept. */
    maxConnections: intRange(1, 1_000_000).default(10_000),
    maxConnectionsPerAddress: intRange(1, 1_000_000).default(500),
    ...listenerAccess,
  })
  .strict();

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

const INPUT_TYPES = 'rtmp-push, rtmp-pull, srt-listener, srt-caller, pull or flow';

const rtmpPushInputSchema = z
  .object({
    name: objectName,
    type: z.literal('rtmp-push'),
    /** Missing means "generate one and keep it" (secrets.ts); never a default value. */
    streamKey: secretKey.optional(),
  })
  .strict();

// A discriminated union so that adding input types later is additive, and so an
// unsupported type yields one clear issue instead of a pile of unknown keys.
const inputSchema = z.discriminatedUnion('type', [rtmpPushInputSchema, rtmpPullInputSchema, srtListenerInputSchema, srtCallerInputSchema, pullInputSchema, flowInputSchema], {
  error: (iss) => {
    if (iss.code !== 'invalid_union') return undefined;
    const input: unknown = iss.input;
    const type = typeof input === 'object' && input !== null ? (input as Record<string, unknown>).type : undefined;
    if (type === undefined) return `input type is required (${INPUT_TYPES})`;
    return `unknown input type ${JSON.stringify(type)} (expected ${INPUT_TYPES})`;
  },
});

const OUTPUT_TYPES = 'rtmp, srt-caller or srt-listener';

export const outputConfigSchema = z.discriminatedUnion('type', [rtmpOutputSchema, srtCallerOutputSchema, srtListenerOutputSchema], {
  error: (iss) => {
    if (iss.code !== 'invalid_union') return undefined;
    const output: unknown = iss.input;
    const type = typeof output === 'object' && output !== null ? (output as Record<string, unknown>).type : undefined;
    if (type === undefined) return `output type is required (${OUTPUT_TYPES})`;
    return `unknown output type ${JSON.stringify(type)} (expected ${OUTPUT_TYPES})`;
  },
});

const inputsSchema = z
  .array(inputSchema)
  .min(1, 'a flow needs an input')
  .superRefine(
    (inputs, ctx) => {
      // Reported at the third entry so the line points at what to remove.
      if (Array.isArray(inputs) && inputs.length > 2) {
        ctx.addIssue({ code: 'custom', path: [2], message: 'a flow has at most two inputs: a primary and a backup' });
      }
    },
    { when: () => true },
  );

/** Primary/backup switching, for a flow with two inputs. */
const failoverSchema = z
  .object({
    /** The active input sent no media this long (or disconnected): the other takes over. */
    afterMs: intRange(200, 60_000).default(1000),
    /** Go back to the primary (the first input) once it has been healthy for revertAfterMs. */
    revert: z.boolean().default(false),
    revertAfterMs: intRange(0, 3_600_000).default(10_000),
  })
  .strict();

const playbackSchema = z
  .object({
    /** Missing means generated, like streamKey. */
    key: secretKey.optional(),
  })
  .strict();

/** Per flow: who may publish to its inputs, and how much each input may send. */
const flowLimitsSchema = z
  .object({
    /** Bits per second per input (e.g. 6M); absent: no cap. */
    maxBitrate: quantity('bits', [100_000, '100k'], [10_000_000_000, '10G']).optional(),
    /** How far above maxBitrate is still fine, as a fraction (0.1 = 10%). */
    bitrateTolerance: z.number().min(0).max(10).default(0.1),
    /** How long the rate may stay above the cap before the action is taken. */
    bitrateGraceSeconds: intRange(1, 600).default(5),
    /** Sliding window the rate is measured over. */
    bitrateWindowSeconds: intRange(1, 60).default(2),
    bitrateAction: z.enum(['disconnect', 'warn']).default('disconnect'),
    /** Publishers allowed for this flow's inputs (IPv4, IPv6); empty: anyone with the key. */
    cidrs: cidrList.prefault([]),
  })
  .strict();

export const flowConfigSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9-]{1,64}$/, 'must be 1..64 characters of a-z 0-9 -'),
    name: nonEmpty.optional(),
    enabled: z.boolean().default(true),
    // Bounded: the file is the store, and a map of 60,000 keys took the YAML library minutes.
    meta: z
      .unknown()
      // The record would drop this key without a word (it is the object's prototype in JavaScript).
      .superRefine((m, ctx) => {
        if (isRecord(m) && Object.hasOwn(m, '__proto__')) ctx.addIssue({ code: 'custom', path: ['__proto__'], message: 'this key cannot be used' });
      })
      .pipe(z.record(z.string().min(1).max(64), z.string().max(1024)).refine((m) => Object.keys(m).length <= 64, 'at most 64 entries'))
      .prefault({}),
    limits: flowLimitsSchema.prefault({}),
    inputs: inputsSchema,
    outputs: z.array(outputConfigSchema).prefault([]),
    playback: playbackSchema.prefault({}),
    recording: recordingSchema.prefault({}),
    failover: failoverSchema.prefault({}),
  })
  .strict()
  .transform((flow) => ({ ...flow, name: flow.name ?? flow.id }));

// Sections use `prefault`, not `default`: an absent section is parsed as `{}` so the
// defaults of the keys inside apply too (a `default` value would be returned unparsed).
export const configSchema = z
  .object({
    rtmp: rtmpSchema.prefault({}),
    /** Optional: without it there is no shared SRT port (inputs and outputs with ports of their own still work). */
    srt: srtSectionSchema.optional(),
    /** Optional: without it there is no HTTP API, no /metrics and no /healthz. */
    api: apiSectionSchema.optional(),
    /** Endpoints that receive events (signed JSON POSTs). */
    webhooks: webhooksSchema,
    publicHost: z
      .string()
      .refine((s) => isIP(s) !== 0 || isHostName(s), 'must be a host name or IP address, without scheme or port')
      .default('localhost'),
    storage: storageSchema.prefault({}),
    recordJobs: recordJobsSchema.prefault({}),
    ffmpeg: z.object({ path: nonEmpty.default('ffmpeg'), probePath: nonEmpty.default('ffprobe') }).strict().prefault({}),
    log: z.object({ level: z.enum(LOG_LEVELS).default('info') }).strict().prefault({}),
    limits: z
      .object({
        maxOutputsPerFlow: intRange(1, MAX_OUTPUTS_PER_FLOW_CEILING).default(50),
        maxFlows: intRange(1, 100_000).default(1_000),
        /** Tasks the config may hold, and tasks running (pushing) at once. */
        maxTasks: intRange(1, 10_000).default(100),
        maxRunningTasks: intRange(1, 1_000).default(20),
      })
      .strict()
      .prefault({}),
    flows: z.array(flowConfigSchema).prefault([]),
    /** Scheduled pull-to-push jobs. */
    tasks: z.array(taskSchema).prefault([]),
    /** Other flowrelay nodes that cascade inputs (type flow, with node) read from. */
    peers: z.array(peerSchema).prefault([]),
  })
  .strict()
  // Runs even when other parts failed (`when`), so one pass reports every problem; it
  // therefore reads the value defensively instead of trusting the output type.
  .superRefine(
    (config, ctx) => {
      checkUniqueness(config, ctx);
      checkOutputs(config, ctx);
      checkSrtPorts(config, ctx);
      checkFlowCount(config, ctx);
      checkCascades(config, (issue) => ctx.addIssue(issue));
      if (isRecord(config)) {
        checkTasks(config.tasks, ctx);
        const limit = isRecord(config.limits) && typeof config.limits.maxTasks === 'number' ? config.limits.maxTasks : 100;
        if (Array.isArray(config.tasks) && config.tasks.length > limit) ctx.addIssue({ code: 'custom', path: ['tasks', limit], message: `at most ${limit} tasks (limits.maxTasks)` });
      }
    },
    { when: () => true },
  );

type Issue = { path: (string | number)[]; message: string };

/**
 * Flow ids, input names within a flow, stream keys and playback keys must be unique,
 * and no playback key may equal a stream key (a player must never be able to publish).
 * Issues land on the later duplicate; messages name the earlier one but never echo a key.
 */
function checkUniqueness(config: unknown, ctx: { addIssue(i: { code: 'custom' } & Issue): void }): void {
  if (!isRecord(config) || !Array.isArray(config.flows)) return;
  const flows: unknown[] = config.flows;
  const add = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
  const ids = new Map<string, string>();
  const streamKeys = new Map<string, string>();
  flows.forEach((flow, i) => {
    if (!isRecord(flow)) return;
    if (typeof flow.id === 'string') {
      const path = ['flows', i, 'id'];
      const first = ids.get(flow.id);
      if (first !== undefined) add(path, `duplicate flow id "${flow.id}" (already used at ${first})`);
      else ids.set(flow.id, formatPath(path));
    }
    if (!Array.isArray(flow.inputs)) return;
    const names = new Map<string, string>();
    (flow.inputs as unknown[]).forEach((input, j) => {
      if (!isRecord(input)) return;
      if (typeof input.name === 'string') {
        const path = ['flows', i, 'inputs', j, 'name'];
        const first = names.get(input.name);
        if (first !== undefined) add(path, `duplicate input name "${input.name}" (already used at ${first})`);
        else names.set(input.name, formatPath(path));
      }
      // Only push keys are ours; an rtmp-pull streamKey is the remote's and may repeat.
      if (input.type === 'rtmp-push' && typeof input.streamKey === 'string') {
        const path = ['flows', i, 'inputs', j, 'streamKey'];
        const first = streamKeys.get(input.streamKey);
        if (first !== undefined) add(path, `duplicate stream key (same as ${first})`);
        else streamKeys.set(input.streamKey, formatPath(path));
      }
    });
  });
  // A second pass so a playback key is compared with stream keys of later flows too.
  const playbackKeys = new Map<string, string>();
  flows.forEach((flow, i) => {
    if (!isRecord(flow) || !isRecord(flow.playback) || typeof flow.playback.key !== 'string') return;
    const key = flow.playback.key;
    const path = ['flows', i, 'playback', 'key'];
    const asStream = streamKeys.get(key);
    const first = playbackKeys.get(key);
    if (asStream !== undefined) add(path, `playback key must differ from every stream key (same as ${asStream})`);
    else if (first !== undefined) add(path, `duplicate playback key (same as ${first})`);
    else playbackKeys.set(key, formatPath(path));
  });
}

/** At most limits.maxFlows flows; the first one over the limit is where the issue points. */
function checkFlowCount(config: unknown, ctx: { addIssue(i: { code: 'custom' } & Issue): void }): void {
  if (!isRecord(config) || !Array.isArray(config.flows)) return;
  const limit = isRecord(config.limits) && typeof config.limits.maxFlows === 'number' ? config.limits.maxFlows : 1_000;
  if (config.flows.length > limit) {
    ctx.addIssue({ code: 'custom', path: ['flows', limit], message: `at most ${limit} flows (limits.maxFlows)` });
  }
}

/**
 * Every SRT port the daemon binds (the shared `srt.listen`, `srt-listener` inputs and
 * outputs with a port of their own) is bound once: a second user of a port would fail
 * to listen when it starts, after `check` and the API had said yes. Port 0 (any free
 * port) is never a clash. An srt-listener input without a port of its own needs the
 * shared one.
 */
function checkSrtPorts(config: unknown, ctx: { addIssue(i: { code: 'custom' } & Issue): void }): void {
  if (!isRecord(config)) return;
  const taken = new Map<number, string>();
  const claim = (listen: unknown, path: (string | number)[]) => {
    if (typeof listen !== 'string') return;
    let port: number;
    try {
      port = parseListen(listen).port;
    } catch {
      return; // Reported by the field's own check.
    }
    if (port === 0) return;
    const first = taken.get(port);
    if (first !== undefined) ctx.addIssue({ code: 'custom', path, message: `SRT port ${port} is already used by ${first}` });
    else taken.set(port, formatPath(path));
  };
  if (isRecord(config.srt)) claim(config.srt.listen, ['srt', 'listen']);
  if (!Array.isArray(config.flows)) return;
  (config.flows as unknown[]).forEach((flow, i) => {
    if (!isRecord(flow)) return;
    for (const key of ['inputs', 'outputs'] as const) {
      const parts = flow[key];
      if (!Array.isArray(parts)) continue;
      (parts as unknown[]).forEach((part, j) => {
        if (!isRecord(part) || part.type !== 'srt-listener') return;
        claim(part.listen, ['flows', i, key, j, 'listen']);
        // Without a port of its own, an input is reached on the shared port: none, and no caller could publish.
        if (key === 'inputs' && part.listen === undefined && !isRecord(config.srt)) {
          ctx.addIssue({ code: 'custom', path: ['flows', i, key, j], message: 'an srt-listener input without `listen` is reached on the shared SRT port: add an `srt` section (srt.listen), or give the input a `listen` port of its own' });
        }
      });
    }
  });
}

/** Output names are unique in their flow, and a flow has at most limits.maxOutputsPerFlow outputs. */
function checkOutputs(config: unknown, ctx: { addIssue(i: { code: 'custom' } & Issue): void }): void {
  if (!isRecord(config) || !Array.isArray(config.flows)) return;
  const limit = isRecord(config.limits) && typeof config.limits.maxOutputsPerFlow === 'number' ? config.limits.maxOutputsPerFlow : 50;
  (config.flows as unknown[]).forEach((flow, i) => {
    if (!isRecord(flow) || !Array.isArray(flow.outputs)) return;
    const outputs = flow.outputs as unknown[];
    if (outputs.length > limit) {
      ctx.addIssue({ code: 'custom', path: ['flows', i, 'outputs', limit], message: `a flow may have at most ${limit} outputs (limits.maxOutputsPerFlow)` });
    }
    const names = new Map<string, string>();
    outputs.forEach((output, j) => {
      if (!isRecord(output) || typeof output.name !== 'string') return;
      const path = ['flows', i, 'outputs', j, 'name'];
      const first = names.get(output.name);
      if (first !== undefined) ctx.addIssue({ code: 'custom', path, message: `duplicate output name "${output.name}" (already used at ${first})` });
      else names.set(output.name, formatPath(path));
    });
  });
}

/** What a config file may contain (before defaults); the API accepts the same shape. */
export type ConfigInput = z.input<typeof configSchema>;
/** A validated config with every default applied; keys may still be missing. */
export type Config = z.output<typeof configSchema>;
export type RtmpConfig = Config['rtmp'];
export type RtmpTlsConfig = NonNullable<RtmpConfig['tls']>;
export type StorageConfig = Config['storage'];
export type FfmpegConfig = Config['ffmpeg'];
export type LogConfig = Config['log'];
export type ApiConfig = NonNullable<Config['api']>;
export type ApiTokenConfig = ApiConfig['tokens'][number];
export type WebhookConfig = Config['webhooks'][number];
export type LogLevel = LogConfig['level'];
export type FlowConfig = Config['flows'][number];
export type InputConfig = FlowConfig['inputs'][number];
export type InputType = InputConfig['type'];
export type PlaybackConfig = FlowConfig['playback'];
export type RecordingConfig = FlowConfig['recording'];
export type RecordJobsConfig = Config['recordJobs'];

export type OutputConfig = FlowConfig['outputs'][number];
export type FlowLimitsConfig = FlowConfig['limits'];
export type RtmpPushInputConfig = Extract<InputConfig, { type: 'rtmp-push' }>;
export type RtmpPullInputConfig = Extract<InputConfig, { type: 'rtmp-pull' }>;
export type SrtListenerInputConfig = Extract<InputConfig, { type: 'srt-listener' }>;
export type SrtCallerInputConfig = Extract<InputConfig, { type: 'srt-caller' }>;
export type PullInputConfig = Extract<InputConfig, { type: 'pull' }>;
export type FlowInputConfig = Extract<InputConfig, { type: 'flow' }>;
export type PeerConfig = Config['peers'][number];
export type RtmpOutputConfig = Extract<OutputConfig, { type: 'rtmp' }>;
export type SrtCallerOutputConfig = Extract<OutputConfig, { type: 'srt-caller' }>;
export type SrtListenerOutputConfig = Extract<OutputConfig, { type: 'srt-listener' }>;

/** After fillMissingSecrets: every push stream key (RTMP and SRT listener) and playback key is present. */
export type ResolvedInputConfig =
  | (RtmpPushInputConfig & { streamKey: string })
  | (SrtListenerInputConfig & { streamKey: string })
  | RtmpPullInputConfig
  | SrtCallerInputConfig
  | PullInputConfig
  | FlowInputConfig;
export type ResolvedFlowConfig = Omit<FlowConfig, 'inputs' | 'playback'> & {
  inputs: ResolvedInputConfig[];
  playback: { key: string };
};
export type ResolvedConfig = Omit<Config, 'flows'> & { flows: ResolvedFlowConfig[] };
