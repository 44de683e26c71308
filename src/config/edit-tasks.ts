import type { Document, YAMLMap } from 'yaml';
import { blockStyle, findIndex, parse, patchMap, topSeq } from './yaml-doc.js';

/** API changes to `tasks:`, applied to the config file's YAML document like flow edits. */
export type TaskEdit =
  | { kind: 'task.create'; task: Record<string, unknown> }
  | { kind: 'task.update'; id: string; changes: Record<string, unknown> }
  | { kind: 'task.delete'; id: string };

export type TaskEditResult = { ok: true; index: number } | { ok: false; code: 'not_found' | 'already_exists' | 'validation_error'; message: string };

/** The plain value of task `id` in a config text, for conflict checks. */
export function taskIn(text: string, id: string): unknown {
  const tasks = topSeq(parse(text), 'tasks', false);
  const i = findIndex(tasks, 'id', id);
  return i < 0 ? undefined : (tasks!.items[i] as YAMLMap).toJSON();
}

export function applyTaskEdit(doc: Document, edit: TaskEdit): TaskEditResult {
  if (edit.kind === 'task.create') {
    const id = edit.task.id;
    if (typeof id !== 'string') return { ok: false, code: 'validation_error', message: 'id: required, a string of 1..64 characters of a-z 0-9 -' };
    const tasks = topSeq(doc, 'tasks', true)!;
    if (findIndex(tasks, 'id', id) >= 0) return { ok: false, code: 'already_exists', message: `a task with id "${id}" already exists` };
    blockStyle(tasks);
    tasks.add(doc.createNode(edit.task));
    return { ok: true, index: tasks.items.length - 1 };
  }
  const tasks = topSeq(doc, 'tasks', false);
  const index = findIndex(tasks, 'id', edit.id);
  if (index < 0) return { ok: false, code: 'not_found', message: `no task with id "${edit.id}"` };
  if (edit.kind === 'task.delete') {
    tasks!.delete(index);
    return { ok: true, index };
  }
  if ('id' in edit.changes && edit.changes.id !== edit.id) return { ok: false, code: 'validation_error', message: "id: a task's id cannot change (create a new task instead)" };
  const { id: _id, ...changes } = edit.changes;
  patchMap(doc, tasks!.items[index] as YAMLMap, changes);
  return { ok: true, index };
}
