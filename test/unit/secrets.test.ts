import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { configSchema, type Config } from '../../src/config/schema.js';
import {
  fileSecretStore,
  fillMissingSecrets,
  forgetFlowSecrets,
  generateKey,
  secretsFilePath,
  type SecretStore,
} from '../../src/config/secrets.js';
import { FlowrelayError } from '../../src/lib/errors.js';

/** The stream key of an input type that has one (SRT callers and pulls have none of ours). */
const streamKeyOf = (input: object | undefined): string | undefined =>
  input && 'streamKey' in input ? (input.streamKey as string | undefined) : undefined;

const KEY_A = 'stream-key-aaaaaaaaaaaa';
const PLAY_A = 'play-key-aaaaaaaaaaaaaa';
const GENERATED_RE = /^[A-Za-z0-9_-]{32}$/;

function config(text: string): Config {
  const r = parseConfigText(text, '/etc/flowrelay/flowrelay.yaml', {});
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.config;
}

const twoFlows = config(`
flows:
  - id: alpha
    inputs: [{ name: main, type: rtmp-push }]
  - id: beta
    inputs: [{ name: cam, type: rtmp-push, streamKey: ${KEY_A} }]
    playback: { key: ${PLAY_A} }
`);

/** An in-memory store that records what was saved, to see when the file would be written. */
function memoryStore(initial: Record<string, string> = {}): SecretStore & { saves: Record<string, string>[] } {
  let values = { ...initial };
  const saves: Record<string, string>[] = [];
  return {
    saves,
    load: () => Promise.resolve({ ...values }),
    save: (v) => {
      values = { ...v };
      saves.push({ ...v });
      return Promise.resolve();
    },
  };
}

describe('generateKey', () => {
  it('is 32 URL-safe characters, a valid stream key, and different every time', () => {
    const keys = new Set(Array.from({ length: 1000 }, generateKey));
    expect(keys.size).toBe(1000);
    for (const key of keys) expect(key).toMatch(GENERATED_RE);
  });
});

describe('fillMissingSecrets', () => {
  it('generates only the missing keys and reports each once', async () => {
    const store = memoryStore();
    const { config: filled, generated } = await fillMissingSecrets(twoFlows, store);

    const alpha = filled.flows[0];
    const beta = filled.flows[1];
    expect(streamKeyOf(alpha?.inputs[0])).toMatch(GENERATED_RE);
    expect(alpha?.playback.key).toMatch(GENERATED_RE);
    expect(alpha?.playback.key).not.toBe(streamKeyOf(alpha?.inputs[0]));
    expect(streamKeyOf(beta?.inputs[0])).toBe(KEY_A);
    expect(beta?.playback.key).toBe(PLAY_A);

    expect(generated).toEqual([
      { flowId: 'alpha', what: 'streamKey', inputName: 'main', value: streamKeyOf(alpha?.inputs[0]) },
      { flowId: 'alpha', what: 'playbackKey', value: alpha?.playback.key },
    ]);
    expect(store.saves).toEqual([
      { 'alpha/input/main': streamKeyOf(alpha?.inputs[0]), 'alpha/playback': alpha?.playback.key },
    ]);
    // The filled config still satisfies every schema rule, uniqueness included.
    expect(configSchema.safeParse(filled).success).toBe(true);
  });

  it('does not modify the config it is given', async () => {
    const before = structuredClone(twoFlows);
    await fillMissingSecrets(twoFlows, memoryStore());
    expect(twoFlows).toEqual(before);
    expect(streamKeyOf(twoFlows.flows[0]?.inputs[0])).toBeUndefined();
  });

  it('reuses stored keys and does not write when nothing changed', async () => {
    const store = memoryStore();
    const first = await fillMissingSecrets(twoFlows, store);
    const second = await fillMissingSecrets(twoFlows, store);
    expect(second.generated).toEqual([]);
    expect(second.config).toEqual(first.config);
    expect(store.saves).toHaveLength(1);
  });

  it('keeps the keys of flows no longer in the config, so a flow that comes back gets the same ones', async () => {
    const goneKey = generateKey();
    const store = memoryStore({
      'gone/input/main': goneKey,
      'gone/playback': generateKey(),
      'alpha/input/main': 'kept-stream-key-000000',
      'alpha/playback': 'kept-play-key-00000000',
      ':api/generated-token-sha256': 'ab'.repeat(32),
    });
    const { config: filled, generated } = await fillMissingSecrets(twoFlows, store);
    expect(streamKeyOf(filled.flows[0]?.inputs[0])).toBe('kept-stream-key-000000');
    expect(generated).toEqual([]);
    // Nothing to write: gone's keys stay where they are.
    expect(store.saves).toEqual([]);
    expect((await store.load())['gone/input/main']).toBe(goneKey);

    // Deleting a flow on purpose (the API) forgets its keys, and only its own.
    await forgetFlowSecrets(store, 'gone');
    expect(Object.keys(store.saves.at(-1)!).sort()).toEqual([':api/generated-token-sha256', 'alpha/input/main', 'alpha/playback']);
    const saves = store.saves.length;
    await forgetFlowSecrets(store, 'gone');
    expect(store.saves).toHaveLength(saves);
  });

  it('replaces a stored key that the config now uses explicitly elsewhere', async () => {
    // An operator copied alpha's generated key into beta's config by hand.
    const store = memoryStore({ 'alpha/input/main': KEY_A });
    const { config: filled, generated } = await fillMissingSecrets(twoFlows, store);
    const newKey = streamKeyOf(filled.flows[0]?.inputs[0]);
    expect(newKey).toMatch(GENERATED_RE);
    expect(generated.map((g) => [g.flowId, g.what])).toEqual([
      ['alpha', 'streamKey'],
      ['alpha', 'playbackKey'],
    ]);
    expect(configSchema.safeParse(filled).success).toBe(true);
  });

  it('has nothing to do for a config without flows', async () => {
    const store = memoryStore();
    const r = await fillMissingSecrets(config(''), store);
    expect(r.generated).toEqual([]);
    expect(r.config.flows).toEqual([]);
    expect(store.saves).toEqual([]);
  });
});

describe('fileSecretStore', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flowrelay-secrets-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps keys across restarts in a 0600 file, creating its directory', async () => {
    const file = secretsFilePath(join(dir, 'nested', 'state'));
    expect(file).toBe(join(dir, 'nested', 'state', 'secrets.json'));

    const first = await fillMissingSecrets(twoFlows, fileSecretStore(file));
    expect(first.generated).toHaveLength(2);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({
      'alpha/input/main': streamKeyOf(first.config.flows[0]?.inputs[0]),
      'alpha/playback': first.config.flows[0]?.playback.key,
    });

    // A new store object on the same file: what a restarted daemon does.
    const second = await fillMissingSecrets(twoFlows, fileSecretStore(file));
    expect(second.generated).toEqual([]);
    expect(second.config).toEqual(first.config);
  });

  it('replaces the file by rename and leaves no temporary files behind', async () => {
    const file = join(dir, 'secrets.json');
    const store = fileSecretStore(file);
    await store.save({ 'a/playback': 'one' });
    const before = await stat(file);
    await store.save({ 'a/playback': 'two' });
    const after = await stat(file);
    // A new inode means the old file was never rewritten in place, so a reader (or a
    // crash) sees either the old content or the new, never a mix.
    expect(after.ino).not.toBe(before.ino);
    expect(after.mode & 0o777).toBe(0o600);
    expect(await store.load()).toEqual({ 'a/playback': 'two' });
    expect(await readdir(dir)).toEqual(['secrets.json']);
  });

  it('loads a missing file as empty', async () => {
    expect(await fileSecretStore(join(dir, 'none.json')).load()).toEqual({});
  });

  it.each([
    ['not JSON', '{ nope'],
    ['not an object', '["a"]'],
    ['a non-string value', '{ "a/playback": 5 }'],
  ])('refuses a file that is %s', async (_what, text) => {
    const file = join(dir, 'secrets.json');
    await writeFile(file, text);
    await expect(fileSecretStore(file).load()).rejects.toThrow(FlowrelayError);
    await expect(fileSecretStore(file).load()).rejects.toMatchObject({ code: 'SECRETS_CORRUPT' });
  });
});
