import { isDeepStrictEqual } from 'node:util';
import { isSeq, type Document, type YAMLMap, type YAMLSeq } from 'yaml';
import type { ConfigIssue } from './load.js';
import { generateKey } from './secrets.js';
import { applyTaskEdit, taskIn, type TaskEdit } from './edit-tasks.js';
import { keepUntouchedText } from './keep-text.js';
import { blockStyle, findIndex, parse, patchMap, sharedAnchor, topSeq } from './yaml-doc.js';

/*
 * Changes made through the API, applied to the config file's YAML document rather than
 * to a re-serialised object: the operator's comments, key order, formatting and ${ENV}
 * references outside the edited keys stay exactly as written.
 */

export type ConfigEdit =
  | TaskEdit
  | { kind: 'flow.create'; flow: Record<string, unknown> }
  | { kind: 'flow.update'; id: string; changes: Record<string, unknown> }
  | { kind: 'flow.delete'; id: string }
  | { kind: 'output.create'; flowId: string; output: Record<string, unknown> }
  | { kind: 'output.update'; flowId: string; name: string; changes: Record<string, unknown> }
  | { kind: 'output.delete'; flowId: string; name: string };

export type EditRefusal = { code: 'not_found' | 'already_exists' | 'conflict' | 'validation_error' | 'config_not_writable' | 'not_applied' | 'illegal_duration'; message: string };

/** Where an edit lands in the file, for naming fields in errors (`flows[2].outputs[0]`, `tasks[1]`). */
export interface EditTarget {
  flowIndex: number;
  outputIndex?: number;
  taskIndex?: number;
}

export type EditResult = { ok: true; text: string; target: EditTarget } | ({ ok: false } & EditRefusal);

function flowsSeq(doc: Document, create: boolean): YAMLSeq | undefined {
  return topSeq(doc, 'flows', create);
}

/** The plain value of flow `id` (or its output `name`) in a config text, for conflict checks. */
export function objectIn(text: string, flowId: string, outputName?: string): unknown {
  const doc = parse(text);
  const flows = flowsSeq(doc, false);
  const i = findIndex(flows, 'id', flowId);
  if (i < 0) return undefined;
  const flow = flows!.items[i] as YAMLMap;
  if (outputName === undefined) return flow.toJSON();
  const outputs = flow.get('outputs', true);
  if (!isSeq(outputs)) return undefined;
  const j = findIndex(outputs, 'name', outputName);
  return j < 0 ? undefined : (outputs.items[j] as YAMLMap).toJSON();
}

/** The flow an edit is about ('' for task edits). */
export function flowIdOf(edit: ConfigEdit): string {
  if (isTaskEdit(edit)) return '';
  return edit.kind === 'flow.create' ? String(edit.flow.id) : 'flowId' in edit ? edit.flowId : edit.id;
}

function isTaskEdit(edit: ConfigEdit): edit is TaskEdit {
  return edit.kind.startsWith('task.');
}

function taskIdOf(edit: TaskEdit): string {
  return edit.kind === 'task.create' ? String(edit.task.id) : edit.id;
}

/** The output an edit is about, if it is about one. */
function outputNameOf(edit: ConfigEdit): string | undefined {
  if (edit.kind === 'output.create') return String(edit.output.name);
  return edit.kind === 'output.update' || edit.kind === 'output.delete' ? edit.name : undefined;
}

/** `flow "x"` or `output "o" of flow "x"`, for messages and logs. */
export function describeTarget(edit: ConfigEdit): string {
  if (isTaskEdit(edit)) return `task "${taskIdOf(edit)}"`;
  const output = outputNameOf(edit);
  const flow = `flow "${flowIdOf(edit)}"`;
  return output === undefined ? flow : `output "${output}" of ${flow}`;
}

/** True when `loaded` (what the daemon runs) and `onDisk` disagree about the edit's object. */
export function editConflicts(loaded: string, onDisk: string, edit: ConfigEdit): boolean {
  if (loaded === onDisk) return false;
  if (isTaskEdit(edit)) return !isDeepStrictEqual(taskIn(loaded, taskIdOf(edit)), taskIn(onDisk, taskIdOf(edit)));
  const flowId = flowIdOf(edit);
  const output = outputNameOf(edit);
  return !isDeepStrictEqual(objectIn(loaded, flowId, output), objectIn(onDisk, flowId, output));
}

/**
 * An issue of the edited file, named relative to what the request sent (`inputs[0].url`
 * rather than `flows[3].inputs[0].url`); issues elsewhere in the file keep their full path.
 */
export function relativeIssue(issue: ConfigIssue, target: EditTarget): ConfigIssue {
  const prefix =
    target.taskIndex !== undefined ? `tasks[${target.taskIndex}]` : target.outputIndex === undefined ? `flows[${target.flowIndex}]` : `flows[${target.flowIndex}].outputs[${target.outputIndex}]`;
  if (issue.path === prefix) return { ...issue, path: '' };
  if (issue.path.startsWith(`${prefix}.`)) return { ...issue, path: issue.path.slice(prefix.length + 1) };
  return { ...issue, message: `${issue.message} (elsewhere in the config file, line ${issue.line})` };
}

/**
 * Values sent through the API are literal: a `${NAME}` in them is written as `$${NAME}`,
 * so it is not expanded from the daemon's environment on load. Otherwise a write token
 * could copy any environment variable into a field that read tokens see.
 */
export function literalValues<T>(value: T): T {
  // A function, not a string: in a replacement string `$$` itself means one `$`.
  if (typeof value === 'string') return value.replaceAll('${', () => '$${') as T;
  if (Array.isArray(value)) return value.map((v: unknown) => literalValues(v)) as T;
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, literalValues(v)])) as T;
  return value;
}

/**
 * A PATCH that sends a flow's inputs without their stream keys keeps the keys the inputs
 * have, rather than getting new ones: publishers keep working unless a key is changed on
 * purpose. A key in the file is copied as the file writes it (a `${ENV}` reference stays
 * one: the secret never lands in the file); a generated one (not in the file) is written
 * with the value the running input has, as keys the API creates are.
 */
/** An input of the running flow, for keeping its stream key. */
export interface RunningInput {
  name: string;
  type: string;
  streamKey?: string | undefined;
}

export function keepStreamKeys(edit: ConfigEdit, fileText: string, running: readonly RunningInput[]): ConfigEdit {
  if (edit.kind !== 'flow.update' || !Array.isArray(edit.changes.inputs)) return edit;
  const inFile = (objectIn(fileText, edit.id) as { inputs?: unknown } | undefined)?.inputs;
  const written = Array.isArray(inFile) ? (inFile as (Record<string, unknown> | null)[]) : [];
  const inputs = (edit.changes.inputs as unknown[]).map((input) => {
    if (typeof input !== 'object' || input === null) return input;
    const i = input as Record<string, unknown>;
    if (i.streamKey !== undefined || (i.type !== 'rtmp-push' && i.type !== 'srt-listener')) return i;
    const asWritten = written.find((w) => w?.name === i.name && w?.type === i.type)?.streamKey;
    const key = typeof asWritten === 'string' ? asWritten : running.find((r) => r.name === i.name && r.type === i.type)?.streamKey;
    return key === undefined ? i : { ...i, streamKey: key };
  });
  return { ...edit, changes: { ...edit.changes, inputs } };
}

/**
 * Keys the daemon would otherwise generate on load are generated here and written as
 * values, so the file alone says how to reach what the API created.
 */
function fillKeys(flow: Record<string, unknown>): Record<string, unknown> {
  // A value of the wrong type is passed on as sent, for validation to refuse: replacing
  // it with the default would accept a request that said something else.
  const inputs = flow.inputs === undefined ? [{ name: 'main', type: 'rtmp-push' }] : flow.inputs;
  const filled = !Array.isArray(inputs)
    ? inputs
    : inputs.map((input: unknown) => {
        if (typeof input !== 'object' || input === null) return input;
        const i = input as Record<string, unknown>;
        return (i.type === 'rtmp-push' || i.type === 'srt-listener') && i.streamKey === undefined ? { ...i, streamKey: generateKey() } : i;
      });
  const playback = flow.playback ?? {};
  const filledPlayback = typeof playback === 'object' && !Array.isArray(playback) ? { ...playback, key: (playback as { key?: unknown }).key ?? generateKey() } : playback;
  return { ...flow, inputs: filled, playback: filledPlayback };
}

/** A flow that cascades from `flowId` on this node (a `flow` input without `node`), if any. */
function localReaderOf(flows: YAMLSeq, flowId: string): { flow: string; input: string } | undefined {
  for (const flow of flows.toJSON() as unknown[]) {
    if (typeof flow !== 'object' || flow === null) continue;
    const { id, inputs } = flow as { id?: unknown; inputs?: unknown };
    if (id === flowId || !Array.isArray(inputs)) continue;
    const input = inputs.find((i: unknown) => {
      const x = i as { type?: unknown; flow?: unknown; node?: unknown } | null;
      return x?.type === 'flow' && x.flow === flowId && x.node === undefined;
    }) as { name?: unknown } | undefined;
    if (input) return { flow: String(id), input: String(input.name) };
  }
  return undefined;
}

export function applyEdit(text: string, edit: ConfigEdit): EditResult {
  const doc = parse(text);
  if (doc.errors.length > 0) return { ok: false, code: 'validation_error', message: `the config file does not parse: ${doc.errors[0]!.message}` };
  const out = (target: EditTarget): EditResult => {
    try {
      return { ok: true, text: keepUntouchedText(text, doc), target };
    } catch (err) {
      // The one way writing fails: the edit removed or replaced an anchor (&name) that an
      // alias (*name) elsewhere in the file still uses.
      return { ok: false, code: 'conflict', message: `the edit cannot be written into the config file: ${(err as Error).message}` };
    }
  };
  if (isTaskEdit(edit)) {
    const done = applyTaskEdit(doc, edit);
    return done.ok ? out({ flowIndex: -1, taskIndex: done.index }) : done;
  }

  if (edit.kind === 'flow.create') {
    const id = edit.flow.id;
    if (typeof id !== 'string') return { ok: false, code: 'validation_error', message: 'id: required, a string of 1..64 characters of a-z 0-9 -' };
    const flows = flowsSeq(doc, true)!;
    if (findIndex(flows, 'id', id) >= 0) return { ok: false, code: 'already_exists', message: `a flow with id "${id}" already exists` };
    blockStyle(flows);
    flows.add(doc.createNode(fillKeys(edit.flow)));
    return out({ flowIndex: flows.items.length - 1 });
  }

  const flowId = 'flowId' in edit ? edit.flowId : edit.id;
  const flows = flowsSeq(doc, false);
  const flowIndex = findIndex(flows, 'id', flowId);
  if (flowIndex < 0) return { ok: false, code: 'not_found', message: `no flow with id "${flowId}"` };
  const flow = flows!.items[flowIndex] as YAMLMap;

  if (edit.kind === 'flow.delete') {
    const reader = localReaderOf(flows!, flowId);
    if (reader) return { ok: false, code: 'conflict', message: `flow "${reader.flow}" reads this flow through its input "${reader.input}"; change or remove that input first` };
    flows!.delete(flowIndex);
    return out({ flowIndex });
  }
  if (edit.kind === 'flow.update') {
    if ('id' in edit.changes && edit.changes.id !== flowId) return { ok: false, code: 'validation_error', message: 'id: a flow\'s id cannot change (create a new flow instead)' };
    const { id: _id, ...changes } = edit.changes;
    const shared = sharedAnchor(doc, flow);
    if (shared !== undefined) return sharedRefusal(`flow "${flowId}"`, shared);
    patchMap(doc, flow, 'inputs' in changes && Array.isArray(changes.inputs) ? { ...changes, inputs: (fillKeys({ inputs: changes.inputs }).inputs as unknown[]) } : changes);
    return out({ flowIndex });
  }

  const existing: unknown = flow.get('outputs', true);
  let seq: YAMLSeq;
  if (isSeq(existing)) seq = existing;
  else {
    if (edit.kind !== 'output.create') return { ok: false, code: 'not_found', message: `flow "${flowId}" has no output named "${edit.name}"` };
    seq = doc.createNode([]) as YAMLSeq;
    flow.set('outputs', seq);
  }
  if (edit.kind === 'output.create') {
    const name = edit.output.name;
    if (typeof name !== 'string') return { ok: false, code: 'validation_error', message: 'name: required' };
    if (findIndex(seq, 'name', name) >= 0) return { ok: false, code: 'already_exists', message: `flow "${flowId}" already has an output named "${name}"` };
    blockStyle(seq);
    seq.add(doc.createNode(edit.output));
    return out({ flowIndex, outputIndex: seq.items.length - 1 });
  }
  const outputIndex = findIndex(seq, 'name', edit.name);
  if (outputIndex < 0) return { ok: false, code: 'not_found', message: `flow "${flowId}" has no output named "${edit.name}"` };
  if (edit.kind === 'output.delete') {
    seq.delete(outputIndex);
    return out({ flowIndex, outputIndex });
  }
  if ('name' in edit.changes && edit.changes.name !== edit.name) return { ok: false, code: 'validation_error', message: 'name: an output\'s name cannot change (create a new output instead)' };
  const output = seq.items[outputIndex] as YAMLMap;
  const shared = sharedAnchor(doc, output);
  if (shared !== undefined) return sharedRefusal(`output "${edit.name}" of flow "${flowId}"`, shared);
  patchMap(doc, output, edit.changes);
  return out({ flowIndex, outputIndex });
}

function sharedRefusal(what: string, anchor: string): EditResult {
  return {
    ok: false,
    code: 'conflict',
    message: `${what} is anchored as &${anchor} in the config file and shared through *${anchor} elsewhere: changing it here would change those too; edit the file by hand`,
  };
}
