import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { expandEnvInDocument } from './env.js';
import { formatPath, type ConfigPath } from './path.js';
import { configSchema, type Config } from './schema.js';
import { hasScheme } from './schema-pull.js';

export interface ConfigIssue {
  file: string;
  /** 1-based; 0 when the file could not be read at all. */
  line: number;
  /** Dotted, with [i] for indices, e.g. flows[0].inputs[0].streamKey; '' for the whole file. */
  path: string;
  message: string;
}

/** On success `file` is the absolute path, the base for everything relative in it. */
export type LoadResult =
  | {
      ok: true;
      config: Config;
      file: string;
      /**
       * Set when the file has no list under `flows` (the key is missing, or empty as in
       * `flows:`), at the line to point to. An explicit `flows: []` leaves it unset. A
       * reload tells "remove every flow" from a file caught in the middle of a save by it.
       */
      flowsUnwritten?: { line: number };
    }
  | { ok: false; issues: ConfigIssue[] };

/** `file:line: path: message`, the shape editors and CI logs turn into links. */
export function formatIssue(i: ConfigIssue): string {
  return i.path === '' ? `${i.file}:${i.line}: ${i.message}` : `${i.file}:${i.line}: ${i.path}: ${i.message}`;
}

const YAML_MESSAGES: Readonly<Record<string, string>> = {
  MULTIPLE_DOCS: 'the file must contain a single YAML document (found a second "---")',
};

/** The library says "Map keys must be unique"; the operator wants to know which key. */
function duplicateKeyMessage(text: string, pos: [number, number]): string {
  // The error points at the start of the second key: a quoted or plain scalar.
  const key = /^("[^"\n]{0,80}"|'[^'\n]{0,80}'|[^\s:,{}[\]#]{1,80})/.exec(text.slice(pos[0]))?.[1];
  return key === undefined ? 'a key appears twice in the same map' : `key ${key.startsWith('"') || key.startsWith("'") ? key : `"${key}"`} appears twice in the same map`;
}

/**
 * Parses, expands `${ENV}` and validates one config text, collecting every problem
 * rather than stopping at the first, each at the line an operator has to edit.
 */
export function parseConfigText(text: string, file: string, env: Record<string, string | undefined>): LoadResult {
  const lineCounter = new LineCounter();
  // merge: `<<: *defaults` is a common way to share settings between flows.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, merge: true });
  const lineAt = (offset: number): number => lineCounter.linePos(offset).line;

  if (doc.errors.length > 0) {
    // The tree of a document with syntax errors is a guess; validating it would add noise.
    const issues = doc.errors.map((e) => ({
      file,
      line: lineAt(e.pos[0]),
      path: '',
      message: e.code === 'DUPLICATE_KEY' ? duplicateKeyMessage(text, e.pos) : (YAML_MESSAGES[e.code] ?? e.message),
    }));
    return { ok: false, issues };
  }

  const issues: (ConfigIssue & { order: number })[] = [];
  const add = (path: ConfigPath, offset: number, message: string): void => {
    issues.push({ file, line: lineAt(offset), path: formatPath(path), message, order: issues.length });
  };

  const envIssues = expandEnvInDocument(doc, env);
  for (const e of envIssues) add(e.path, e.offset, e.message);

  let value: unknown;
  try {
    value = doc.toJS();
  } catch (err) {
    // toJS refuses alias bombs (too many alias expansions) by throwing.
    add([], 0, (err as Error).message);
    return finish(issues);
  }

  const parsed = configSchema.safeParse(dropNullEntries(value ?? {}));
  if (!parsed.success) {
    for (const iss of parsed.error.issues) {
      for (const { path, message } of explainIssue(iss)) {
        // A value whose ${VAR} failed is not what the operator wrote; its env issue says enough.
        if (envIssues.some((e) => startsWith(path, e.path))) continue;
        add(path, locate(doc, path), message);
      }
    }
  }
  if (!parsed.success || issues.length > 0) return finish(issues);

  const abs = resolve(file);
  const flows = (value as { flows?: unknown } | null)?.flows;
  const flowsUnwritten = flows === undefined || flows === null ? { line: lineAt(locate(doc, ['flows'])) } : undefined;
  return { ok: true, config: resolvePaths(parsed.data, dirname(abs)), file: abs, ...(flowsUnwritten && { flowsUnwritten }) };
}

/**
 * Reads and parses `file`, keeping the text it read (API edits compare it with the file
 * on disk later). An unreadable file is one issue at line 0 carrying the OS error.
 */
export async function readConfigFile(
  file: string,
  env: Record<string, string | undefined> = process.env,
  /** How the text is parsed (a reload parses on the config thread). */
  parse: (text: string, file: string, env: Record<string, string | undefined>) => LoadResult | Promise<LoadResult> = parseConfigText,
): Promise<{ text: string | undefined; loaded: LoadResult }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return { text: undefined, loaded: { ok: false, issues: [{ file, line: 0, path: '', message: (err as Error).message }] } };
  }
  return { text, loaded: await parse(text, file, env) };
}

/** Reads and parses `file` (readConfigFile without the text). */
export async function loadConfigFile(file: string, env: Record<string, string | undefined> = process.env): Promise<LoadResult> {
  return (await readConfigFile(file, env)).loaded;
}

/**
 * In YAML, `rtmp:` with everything under it commented out is null. Operators mean
 * "not set", so such entries are removed before validation and defaults apply. This is
 * a property of hand-edited files, which is why it lives here and not in the schema.
 */
function dropNullEntries(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropNullEntries);
  if (typeof value !== 'object' || value === null) return value;
  // fromEntries defines properties, so a `__proto__` key stays a key (and is rejected as unknown).
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => [k, dropNullEntries(v)]),
  );
}

function finish(issues: (ConfigIssue & { order: number })[]): LoadResult {
  const sorted = [...issues].sort((a, b) => a.line - b.line || a.order - b.order);
  return { ok: false, issues: sorted.map(({ order: _order, ...i }) => i) };
}

/** One zod issue can stand for several problems: each unknown key gets its own line. */
export function explainIssue(iss: z.core.$ZodIssue): { path: PropertyKey[]; message: string }[] {
  if (iss.code === 'unrecognized_keys') {
    return iss.keys.map((key) => ({ path: [...iss.path, key], message: `unknown key "${key}"` }));
  }
  return [{ path: iss.path, message: iss.message }];
}

function startsWith(path: readonly PropertyKey[], prefix: readonly PropertyKey[]): boolean {
  return prefix.length <= path.length && prefix.every((seg, i) => seg === path[i]);
}

/**
 * The line of `path` in a config text (of its nearest existing parent when it is not
 * there), for issues found after parsing, such as files the config names that do not load.
 */
export function lineOfPath(text: string, path: ConfigPath): number {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, merge: true });
  return lineCounter.linePos(locate(doc, path)).line;
}

/**
 * The offset of the deepest node on `path` that exists in the document. Through a map
 * it is the key's position (the `tls:` line for a key missing inside tls), through a
 * sequence the item's.
 */
function locate(doc: Document, path: readonly PropertyKey[]): number {
  let node: unknown = doc.contents;
  let offset = doc.contents?.range?.[0] ?? 0;
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : undefined) === String(seg));
      if (!pair) break;
      offset = (isScalar(pair.key) ? pair.key.range?.[0] : undefined) ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item: unknown = node.items[seg];
      if (!item) break;
      offset = (item as { range?: [number, number, number] }).range?.[0] ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return offset;
}

/** Relative paths in a config file mean "next to the file", not "wherever the daemon was started". */
function resolvePaths(config: Config, baseDir: string): Config {
  const tls = config.rtmp.tls;
  const withCa = <T extends { tls: { ca?: string | undefined } }>(o: T): T =>
    o.tls.ca === undefined ? o : { ...o, tls: { ...o.tls, ca: resolve(baseDir, o.tls.ca) } };
  return {
    ...config,
    rtmp: {
      ...config.rtmp,
      ...(tls && { tls: { ...tls, cert: resolve(baseDir, tls.cert), key: resolve(baseDir, tls.key) } }),
    },
    storage: { ...config.storage, dir: resolve(baseDir, config.storage.dir) },
    peers: config.peers.map((peer) => (typeof peer.tls === 'object' ? withCa({ ...peer, tls: peer.tls }) : peer)),
    flows: config.flows.map((flow) => ({
      ...flow,
      inputs: flow.inputs.map((input) => {
        if (input.type === 'rtmp-pull') return withCa(input);
        return input.type === 'pull' ? { ...input, url: filePath(input.url) } : input;
      }),
      outputs: flow.outputs.map((output) => (output.type === 'rtmp' ? withCa(output) : output)),
    })),
    // ffmpeg would read a relative file against its working directory, or (in a files
    // task's concat list) against the list's own directory: neither is the config's.
    tasks: config.tasks.map((task) => withCa(task.source.type === 'files' ? { ...task, source: { ...task.source, urls: task.source.urls.map(filePath) } } : task)),
  };
  function filePath(url: string): string {
    return hasScheme(url) ? url : resolve(baseDir, url);
  }
}
