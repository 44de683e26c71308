import { isIP, isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import { FlowrelayError } from '../lib/errors.js';
import { formatPath } from './path.js';
import { parseQuantity, type QuantityKind } from './quantity.js';

/*
 * The one schema for the config file, also meant to validate API bodies, so it holds
 * every rule that can be checked from the document alone. Things that need the file
 * system or the environment (relative paths, ${ENV}, generated keys) live in load.ts,
 * env.ts and secrets.ts. Every object is strict: a typo in a key must fail loudly, not
 * silently fall back to a default.
 */

const HOSTNAME_RE =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

function isHostName(s: string): boolean {
  // A dotted all-digit string that is not a valid IPv4 address (999.1.1.1) would pass the
  // hostname pattern; nobody means that as a name.
  return HOSTNAME_RE.test(s) && !/^[\d.]+$/.test(s);
}

/** Splits `host:port` / `[v6]:port`; throws a FlowrelayError with an operator-facing message. */
export function parseListen(s: string): { host: string; port: number } {
  const bad = (why: string): never => {
    throw new FlowrelayError('CONFIG_BAD_LISTEN', `${JSON.stringify(s)} ${why}`);
  };
  const m = /^(?:\[([^\]]*)\]|([^[\]]*)):(\d+)$/.exec(s);
  if (!m) {
    return bad('is not host:port (for IPv6 use brackets, e.g. [::]:1935)');
  }
  const [, v6, other, portText = ''] = m;
  let host: string;
  if (v6 !== undefined) {
    if (!isIPv6(v6)) return bad('has an invalid IPv6 address in brackets');
    host = v6;
  } else {
    host = other ?? '';
    if (isIPv6(host)) return bad('has an IPv6 address without brackets; write [addr]:port');
    if (!isIPv4(host) && !isHostName(host)) return bad('has an invalid host');
  }
  const port = Number(portText);
  if (portText.length > 5 || port > 65535) return bad('has a port outside 0..65535');
  return { host, port };
}

const listen = (fallback: string) =>
  z
    .string({ error: 'must be a "host:port" string, e.g. 0.0.0.0:1935' })
    .superRefine((s, ctx) => {
      try {
        parseListen(s);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    })
    .default(fallback);

const intRange = (min: number, max: number) =>
  z
    .int({ error: 'must be a whole number' })
    .min(min, `must be from ${min} to ${max}`)
    .max(max, `must be from ${min} to ${max}`);

/** A size or rate: a number or a string like `8Mi`, normalised to a whole number. */
const quantity = (kind: QuantityKind, [min, minText]: [number, string], [max, maxText]: [number, string]) =>
  z
    .union([z.string(), z.number()], { error: `must be a number of ${kind} or a string such as "8Mi"` })
    .transform((v, ctx) => {
      try {
        return parseQuantity(v, kind);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    })
    .pipe(
      z
        .number()
        .min(min, `must be between ${minText} and ${maxText} ${kind}`)
        .max(max, `must be between ${minText} and ${maxText} ${kind}`),
    );

const nonEmpty = z.string().min(1, 'must not be empty');

/**
 * Stream and playback keys appear verbatim in RTMP URLs (rtmp://host/live/<key>), so
 * they are limited to RFC 3986 unreserved characters; 16 characters is the floor that
 * keeps a hand-written key from being guessable in practice.
 */
const secretKey = z
  .string()
  .min(16, 'must be at least 16 characters')
  .max(128, 'must be at most 128 characters')
  .regex(/^[A-Za-z0-9._~-]*$/, 'may only contain letters, digits and . _ ~ -');

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
    chunkSize: intRange(128, 65536).default(4096),
    maxMessageSize: quantity('bytes', [1024, '1Ki'], [64 * 1024 * 1024, '64Mi']).default(8 * 1024 * 1024),
    handshakeTimeoutMs: intRange(1000, 120_000).default(10_000),
    idleTimeoutMs: intRange(1000, 600_000).default(15_000),
    /** Bytes a player may have queued before it skips to the next keyframe. */
    maxPlayerBacklog: quantity('bytes', [64 * 1024, '64Ki'], [256 * 1024 * 1024, '256Mi']).default(8 * 1024 * 1024),
  })
  .strict();

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** Input types the design names but this build does not implement yet. */
const FUTURE_INPUT_TYPES: ReadonlySet<unknown> = new Set(['rtmp-pull', 'srt-listener', 'srt-caller', 'flow', 'pull']);

const rtmpPushInputSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1..64 characters of A-Z a-z 0-9 _ -'),
    type: z.literal('rtmp-push'),
    /** Missing means "generate one and keep it" (secrets.ts); never a default value. */
    streamKey: secretKey.optional(),
  })
  .strict();

// A discriminated union with one member so that adding input types later is additive,
// and so an unsupported type yields one clear issue instead of a pile of unknown keys.
const inputSchema = z.discriminatedUnion('type', [rtmpPushInputSchema], {
  error: (iss) => {
    if (iss.code !== 'invalid_union') return undefined;
    const input: unknown = iss.input;
    const type = typeof input === 'object' && input !== null ? (input as Record<string, unknown>).type : undefined;
    if (type === undefined) return 'input type is required (rtmp-push)';
    if (FUTURE_INPUT_TYPES.has(type)) return `input type ${String(type)} is not supported yet`;
    return `unknown input type ${JSON.stringify(type)} (expected rtmp-push)`;
  },
});

const inputsSchema = z
  .array(inputSchema)
  .min(1, 'a flow needs exactly one input')
  .superRefine(
    (inputs, ctx) => {
      // Reported at the second entry so the line points at what to remove.
      if (Array.isArray(inputs) && inputs.length > 1) {
        ctx.addIssue({
          code: 'custom',
          path: [1],
          message: 'a flow has exactly one input for now; a second (backup) input comes with failover support',
        });
      }
    },
    { when: () => true },
  );

const playbackSchema = z
  .object({
    /** Missing means generated, like streamKey. */
    key: secretKey.optional(),
  })
  .strict();

const flowSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9-]{1,64}$/, 'must be 1..64 characters of a-z 0-9 -'),
    name: nonEmpty.optional(),
    enabled: z.boolean().default(true),
    meta: z.record(z.string(), z.string()).prefault({}),
    inputs: inputsSchema,
    playback: playbackSchema.prefault({}),
  })
  .strict()
  .transform((flow) => ({ ...flow, name: flow.name ?? flow.id }));

// Sections use `prefault`, not `default`: an absent section is parsed as `{}` so the
// defaults of the keys inside apply too (a `default` value would be returned unparsed).
export const configSchema = z
  .object({
    rtmp: rtmpSchema.prefault({}),
    publicHost: z
      .string()
      .refine((s) => isIP(s) !== 0 || isHostName(s), 'must be a host name or IP address, without scheme or port')
      .default('localhost'),
    storage: z.object({ dir: nonEmpty.default('./data') }).strict().prefault({}),
    ffmpeg: z.object({ path: nonEmpty.default('ffmpeg') }).strict().prefault({}),
    log: z.object({ level: z.enum(LOG_LEVELS).default('info') }).strict().prefault({}),
    flows: z.array(flowSchema).prefault([]),
  })
  .strict()
  // Runs even when other parts failed (`when`), so one pass reports every problem; it
  // therefore reads the value defensively instead of trusting the output type.
  .superRefine((config, ctx) => checkUniqueness(config, ctx), { when: () => true });

type Issue = { path: (string | number)[]; message: string };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

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
      if (typeof input.streamKey === 'string') {
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

/** What a config file may contain (before defaults); the API accepts the same shape. */
export type ConfigInput = z.input<typeof configSchema>;
/** A validated config with every default applied; keys may still be missing. */
export type Config = z.output<typeof configSchema>;
export type RtmpConfig = Config['rtmp'];
export type RtmpTlsConfig = NonNullable<RtmpConfig['tls']>;
export type StorageConfig = Config['storage'];
export type FfmpegConfig = Config['ffmpeg'];
export type LogConfig = Config['log'];
export type LogLevel = LogConfig['level'];
export type FlowConfig = Config['flows'][number];
export type InputConfig = FlowConfig['inputs'][number];
export type InputType = InputConfig['type'];
export type PlaybackConfig = FlowConfig['playback'];

/** After fillMissingSecrets: every stream and playback key is present. */
export type ResolvedInputConfig = InputConfig & { streamKey: string };
export type ResolvedFlowConfig = Omit<FlowConfig, 'inputs' | 'playback'> & {
  inputs: ResolvedInputConfig[];
  playback: { key: string };
};
export type ResolvedConfig = Omit<Config, 'flows'> & { flows: ResolvedFlowConfig[] };
