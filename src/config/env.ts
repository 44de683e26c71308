import { isMap, isScalar, isSeq, type Document } from 'yaml';

/** A problem with a `${NAME}` reference; `offset` is where its scalar starts in the text. */
export interface EnvIssue {
  path: (string | number)[];
  offset: number;
  message: string;
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Replaces `${NAME}` with `env[NAME]`; `$${` is a literal `${`. A lone `$` is left alone
 * so prices and shell-ish strings survive. The environment is a parameter, never
 * process.env read from here, so tests and reloads decide what is visible.
 */
export function expandEnvRefs(s: string, env: Record<string, string | undefined>): { value: string; errors: string[] } {
  let out = '';
  const errors: string[] = [];
  let i = 0;
  while (i < s.length) {
    if (s.startsWith('$${', i)) {
      out += '${';
      i += 3;
    } else if (s.startsWith('${', i)) {
      const end = s.indexOf('}', i + 2);
      if (end < 0) {
        errors.push('unterminated "${" (write "$${" for a literal "${")');
        break;
      }
      const name = s.slice(i + 2, end);
      const value = env[name];
      if (!NAME_RE.test(name)) errors.push(`invalid environment variable name ${JSON.stringify(name)}`);
      else if (value === undefined) errors.push(`environment variable ${name} is not set`);
      else out += value;
      i = end + 1;
    } else {
      out += s[i];
      i += 1;
    }
  }
  return { value: out, errors };
}

/**
 * Expands references in every string value of the document, in place, so the caller
 * still has the nodes' positions for error lines. Map keys are left alone: they are
 * schema names, not data. The result is always a string, even for a plain scalar such
 * as `chunkSize: ${CHUNK}`: re-typing it would turn an all-digit stream key into a
 * number.
 */
export function expandEnvInDocument(doc: Document, env: Record<string, string | undefined>): EnvIssue[] {
  const issues: EnvIssue[] = [];
  const walk = (node: unknown, path: (string | number)[]): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? pair.key.value : pair.key;
        walk(pair.value, [...path, String(key)]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...path, i]));
    } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('$')) {
      const { value, errors } = expandEnvRefs(node.value, env);
      node.value = value;
      for (const message of errors) issues.push({ path, offset: node.range?.[0] ?? 0, message });
    }
    // Aliases need nothing: they resolve to an anchored node that is expanded where it is defined.
  };
  walk(doc.contents, []);
  return issues;
}
