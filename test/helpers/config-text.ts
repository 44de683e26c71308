import { formatIssue, parseConfigText, type ConfigIssue } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';

/** The path config texts are checked as, so issues name a file as they do in the daemon. */
export const CONFIG_FILE = '/etc/flowrelay/flowrelay.yaml';

type Env = Record<string, string | undefined>;

/** The config a text stands for; throws with every issue when it does not validate. */
export function parseOk(text: string, env: Env = {}): Config {
  const r = parseConfigText(text, CONFIG_FILE, env);
  if (!r.ok) throw new Error(`expected a valid config:\n${r.issues.map(formatIssue).join('\n')}`);
  return r.config;
}

/** The issues of a text that must not validate; throws when it does. */
export function parseBad(text: string, env: Env = {}): ConfigIssue[] {
  const r = parseConfigText(text, CONFIG_FILE, env);
  if (r.ok) throw new Error('expected the config to be rejected');
  return r.issues;
}

/** [line, path, message] triples: compact to compare, and the order is part of the contract. */
export const summary = (issues: ConfigIssue[]): [number, string, string][] => issues.map((i) => [i.line, i.path, i.message]);
