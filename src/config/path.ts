/** A location inside the config document, as zod and the YAML walker produce it. */
export type ConfigPath = readonly PropertyKey[];

const PLAIN_KEY_RE = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/**
 * `flows[0].inputs[0].streamKey`: the form operators see in error messages. Keys that
 * would be ambiguous in dotted form (meta keys may contain dots) are quoted.
 */
export function formatPath(path: ConfigPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const key = String(seg);
      if (!PLAIN_KEY_RE.test(key)) out += `[${JSON.stringify(key)}]`;
      else out += out === '' ? key : `.${key}`;
    }
  }
  return out;
}
