import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/atomic-write.js';
import { FlowrelayError } from '../lib/errors.js';
import type { Config, ResolvedConfig } from './schema.js';

/*
 * Design convention 10: no default secrets. A key the operator did not write is
 * generated once, shown once, and kept in a state file so it survives restarts; the
 * config file itself is never rewritten for this.
 */

export interface GeneratedSecret {
  flowId: string;
  what: 'streamKey' | 'playbackKey';
  inputName?: string;
  value: string;
}

export interface SecretStore {
  load(): Promise<Record<string, string>>;
  save(values: Record<string, string>): Promise<void>;
}

/** Where the daemon keeps generated keys: runtime state, so under storage.dir. */
export function secretsFilePath(storageDir: string): string {
  return join(storageDir, 'secrets.json');
}

/** 24 random bytes = 192 bits, 32 base64url characters: valid in a URL path and in the key schema. */
export function generateKey(): string {
  return randomBytes(24).toString('base64url');
}

/** A JSON object file, mode 0600, replaced atomically so a crash never leaves half a file. */
export function fileSecretStore(path: string): SecretStore {
  return {
    async load() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
        throw err;
      }
      let data: unknown;
      try {
        data = JSON.parse(text);
      } catch (err) {
        throw new FlowrelayError('SECRETS_CORRUPT', `${path} is not valid JSON`, { cause: err });
      }
      if (typeof data !== 'object' || data === null || Array.isArray(data)) {
        throw new FlowrelayError('SECRETS_CORRUPT', `${path} must hold a JSON object`);
      }
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(data)) {
        if (typeof v !== 'string') throw new FlowrelayError('SECRETS_CORRUPT', `${path}: "${k}" is not a string`);
        out[k] = v;
      }
      return out;
    },
    async save(values) {
      await writeFileAtomic(path, `${JSON.stringify(values, null, 2)}\n`, 0o600);
    },
  };
}

/** Drops a deleted flow's generated keys, so a new flow of the same id gets new ones. */
export async function forgetFlowSecrets(store: SecretStore, flowId: string): Promise<void> {
  const stored = await store.load();
  // Entries starting with ':' are not per flow (a flow id cannot contain ':').
  const kept = Object.entries(stored).filter(([k]) => k.startsWith(':') || k.split('/')[0] !== flowId);
  if (kept.length !== Object.keys(stored).length) await store.save(Object.fromEntries(kept));
}

const streamKeyId = (flowId: string, inputName: string) => `${flowId}/input/${inputName}`;
const playbackKeyId = (flowId: string) => `${flowId}/playback`;

/**
 * Returns a copy of `config` with every missing stream and playback key filled, from the
 * store when it has one, else newly generated and saved. `generated` lists only the new
 * ones so the caller can print them once. Store entries of flows no longer in the config
 * are kept: a flow that comes back (a hand edit undone, a file read in the middle of a
 * save) gets the keys its encoders and players already have. Only deleting a flow through
 * the API forgets them (forgetFlowSecrets). A stored key that now collides with a key
 * written in the config is replaced, because the schema's uniqueness rules must still
 * hold after filling.
 */
export async function fillMissingSecrets(
  config: Config,
  store: SecretStore,
): Promise<{ config: ResolvedConfig; generated: GeneratedSecret[] }> {
  const stored = await store.load();
  const next: Record<string, string> = { ...stored };

  const taken = new Set<string>();
  for (const flow of config.flows) {
    for (const input of flow.inputs) if (input.type === 'rtmp-push' && input.streamKey !== undefined) taken.add(input.streamKey);
    if (flow.playback.key !== undefined) taken.add(flow.playback.key);
  }
  const generated: GeneratedSecret[] = [];
  const fill = (id: string, found: Omit<GeneratedSecret, 'value'>): string => {
    let value = next[id];
    if (value === undefined || taken.has(value)) {
      value = generateKey();
      generated.push({ ...found, value });
      next[id] = value;
    }
    taken.add(value);
    return value;
  };

  // A deep copy: the caller's config stays as loaded (its missing keys mean "generated").
  const out = structuredClone(config);
  for (const flow of out.flows) {
    for (const input of flow.inputs) {
      // Only inputs that others publish to have keys of ours; a pull's streamKey belongs to the remote.
      if (input.type !== 'rtmp-push' && input.type !== 'srt-listener') continue;
      input.streamKey ??= fill(streamKeyId(flow.id, input.name), {
        flowId: flow.id,
        what: 'streamKey',
        inputName: input.name,
      });
    }
    flow.playback.key ??= fill(playbackKeyId(flow.id), { flowId: flow.id, what: 'playbackKey' });
  }

  if (!sameEntries(stored, next)) await store.save(next);
  return { config: out as ResolvedConfig, generated };
}

function sameEntries(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/** The store entry for the API token generated when api.tokens is empty: its hash only. */
const GENERATED_API_TOKEN = ':api/generated-token-sha256';

export interface ApiTokens {
  tokens: { name: string; sha256: string; scope: 'read' | 'write' }[];
  /** A token made now, to be shown once (its hash is all that is kept). */
  generated?: string;
}

/**
 * The API's tokens: those in the config, or, when the config has an api section and no
 * tokens, one write token generated on first start (only its hash is stored).
 */
export async function resolveApiTokens(
  config: Pick<Config, 'api'>,
  store: SecretStore,
  makeToken: () => { token: string; sha256: string },
): Promise<ApiTokens> {
  if (!config.api) return { tokens: [] };
  if (config.api.tokens.length > 0) return { tokens: config.api.tokens };
  const stored = await store.load();
  const hash = stored[GENERATED_API_TOKEN];
  if (hash !== undefined) return { tokens: [{ name: 'generated', sha256: hash, scope: 'write' }] };
  const { token, sha256 } = makeToken();
  await store.save({ ...stored, [GENERATED_API_TOKEN]: sha256 });
  return { tokens: [{ name: 'generated', sha256, scope: 'write' }], generated: token };
}
