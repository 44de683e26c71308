import { applyEdit, keepStreamKeys, literalValues, relativeIssue, type ConfigEdit, type EditRefusal, type RunningInput } from './edit.js';
import { parseConfigText, type ConfigIssue } from './load.js';

export type PreparedEdit = { ok: true; text: string } | ({ ok: false; issues?: ConfigIssue[] } & EditRefusal);

/**
 * An API change made on the file's text and validated as a whole file: the new text, or
 * why not. Pure (text in, text out), so that it can run off the media thread: on a file
 * of 1,000 flows it parses YAML several times, for about a second.
 */
export function prepareEdit(disk: string, edit: ConfigEdit, running: readonly RunningInput[], file: string, env: Record<string, string | undefined>): PreparedEdit {
  // Literal first: the keys kept from the file are copied as written, references and all.
  const made = applyEdit(disk, keepStreamKeys(literalValues(edit), disk, running));
  if (!made.ok) return made;
  const check = parseConfigText(made.text, file, env);
  if (check.ok) return { ok: true, text: made.text };
  // A problem the file already had is named at its line in the file, not in the edited text.
  const onDisk = parseConfigText(disk, file, env);
  const diskLines = new Map(onDisk.ok ? [] : onDisk.issues.map((i) => [i.path, i.line]));
  const issues = check.issues.map((i) => relativeIssue({ ...i, line: diskLines.get(i.path) ?? i.line }, made.target));
  return { ok: false, code: 'validation_error', message: issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; '), issues };
}
