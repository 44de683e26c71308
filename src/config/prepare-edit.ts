import { applyEdit, keepStreamKeys, literalValues, relativeIssue, type ConfigEdit, type EditRefusal, type EditTarget, type RunningInput } from './edit.js';
import { lineOfPath, parseConfigText, type ConfigIssue } from './load.js';
import type { ConfigPath } from './path.js';
import { DUPLICATE_DESTINATION } from './schema-tasks.js';

const BOM = '\uFEFF';

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
  // The YAML library reads past a byte-order mark and does not write one back; an editor that saved one expects it kept.
  if (check.ok) return { ok: true, text: disk.startsWith(BOM) && !made.text.startsWith(BOM) ? BOM + made.text : made.text };
  // A problem the file already had is named at its line in the file, not in the edited text.
  const onDisk = parseConfigText(disk, file, env);
  const diskLines = new Map(onDisk.ok ? [] : onDisk.issues.map((i) => [i.path, i.line]));
  const issues = isDelete(edit)
    ? check.issues.map((i) => issueOnDisk(i, made.target, disk, made.text))
    : check.issues.map((i) => relativeIssue({ ...i, line: diskLines.get(i.path) ?? i.line }, made.target));
  // Checked here, in the edit queue, on the file as it is: two requests at once for one
  // destination both pass any check made before it.
  const duplicate = issues.find((i) => i.message.startsWith(DUPLICATE_DESTINATION));
  if (duplicate) return { ok: false, code: 'already_exists', message: `${duplicate.path}: ${duplicate.message.slice(DUPLICATE_DESTINATION.length)}` };
  return { ok: false, code: 'validation_error', message: issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; '), issues };
}

function isDelete(edit: ConfigEdit): boolean {
  return edit.kind.endsWith('.delete');
}

/**
 * An issue left after a delete is elsewhere in the file (what was deleted has none), and
 * what came after the deleted item moved up: `flows[3]` of the edited text is `flows[4]`
 * on disk, and its lines are further down. Named as the file on disk has it.
 */
function issueOnDisk(issue: ConfigIssue, target: EditTarget, disk: string, edited: string): ConfigIssue {
  const [seq, index, at]: [string, number, ConfigPath] =
    target.taskIndex !== undefined
      ? ['tasks', target.taskIndex, ['tasks', target.taskIndex]]
      : target.outputIndex !== undefined
        ? [`flows[${target.flowIndex}].outputs`, target.outputIndex, ['flows', target.flowIndex, 'outputs', target.outputIndex]]
        : ['flows', target.flowIndex, ['flows', target.flowIndex]];
  const line = issue.line >= lineOfPath(disk, at) ? issue.line + disk.split('\n').length - edited.split('\n').length : issue.line;
  const moved = issue.path.startsWith(`${seq}[`) ? /^\[(\d+)\]/.exec(issue.path.slice(seq.length)) : null;
  const path = moved && Number(moved[1]) >= index ? `${seq}[${Number(moved[1]) + 1}]${issue.path.slice(seq.length + moved[0].length)}` : issue.path;
  return { ...issue, path, line, message: `${issue.message} (elsewhere in the config file, line ${line})` };
}
