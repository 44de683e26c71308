import { isDeepStrictEqual } from 'node:util';
import { isMap, isScalar, isSeq, type Document, type Node, type Pair } from 'yaml';
import { parse, STRINGIFY_OPTIONS } from './yaml-doc.js';

/*
 * The yaml library writes a whole document back in its own style: flow collections
 * re-spaced (`[{ a: 1 }]` becomes `[ { a: 1 } ]`), indentation made two spaces, trailing
 * comments moved next to their value. An API edit touches one flow or task; everything
 * else in the operator's file should stay byte for byte as they wrote it.
 */

interface Swap {
  /** Range in the re-serialised text. */
  from: number;
  to: number;
  /** The original text for it. */
  text: string;
}

/**
 * The edited document as text, with every entry and sequence item the edit left unchanged
 * (a whole top-level section, another flow, an untouched key of the edited flow) copied
 * from the original text. The result must read back as exactly the edited document
 * (values and comments); any copy that would change that is left out, so this can only
 * keep formatting, never change what the file says.
 */
export function keepUntouchedText(original: string, edited: Document): string {
  const plain = edited.toString(STRINGIFY_OPTIONS);
  let text = plain;
  try {
    const swaps = findSwaps(original, plain);
    if (swaps.length > 0) text = apply(plain, acceptable(plain, [], swaps));
  } catch {
    text = plain;
  }
  // The library writes LF; a CRLF file stays CRLF throughout.
  return original.includes('\r\n') ? text.replace(/\r?\n/g, '\r\n') : text;
}

/**
 * The swaps of `group` that can join `accepted` with the text still reading as `plain`:
 * all at once when they fit (the usual case, one check), else found by halving, so a copy
 * that does not fit costs a few checks and not the whole file's formatting.
 */
function acceptable(plain: string, accepted: Swap[], group: Swap[]): Swap[] {
  if (readsAs(apply(plain, [...accepted, ...group]), plain)) return [...accepted, ...group];
  if (group.length === 1) return accepted;
  const half = Math.ceil(group.length / 2);
  const withFirst = acceptable(plain, accepted, group.slice(0, half));
  return acceptable(plain, withFirst, group.slice(half));
}

function findSwaps(original: string, plain: string): Swap[] {
  const before = parse(original);
  const after = parse(plain);
  const swaps: Swap[] = [];
  const where = { original, plain, swaps };
  if (isMap(before.contents) && isMap(after.contents)) collectMap(where, before.contents.items as Pair<Node, Node>[], after.contents.items as Pair<Node, Node>[], 0);
  return swaps;
}

interface Where {
  original: string;
  plain: string;
  swaps: Swap[];
}

/** How deep into changed entries to look for unchanged ones: flows[i].outputs[j].tls. */
const MAX_DEPTH = 4;

/** Unchanged pairs are copied whole (key and value); changed ones are looked into. */
function collectMap(where: Where, oldPairs: Pair<Node, Node>[], newPairs: Pair<Node, Node>[], depth: number): void {
  for (const pair of newPairs) {
    const key = scalarKey(pair);
    const old = key === undefined ? undefined : oldPairs.find((p) => scalarKey(p) === key);
    if (!old || !old.value || !pair.value) continue;
    if (isDeepStrictEqual(old.value.toJSON(), pair.value.toJSON())) {
      const swap = copyOf(where, old.key.range, old.value.range, pair.key.range, pair.value.range);
      if (swap) where.swaps.push(swap);
    } else {
      collectChanged(where, old.value, pair.value, depth + 1);
    }
  }
}

/** Items are matched by value in order; a changed item is found again by its id or name. */
function collectSeq(where: Where, oldItems: Node[], newItems: Node[], depth: number): void {
  let next = 0;
  for (const item of newItems) {
    const value: unknown = item.toJSON();
    const at = oldItems.findIndex((o, i) => i >= next && isDeepStrictEqual(o.toJSON(), value));
    if (at >= 0) {
      next = at + 1;
      const oldItem = oldItems[at]!;
      const swap = copyOf(where, oldItem.range, oldItem.range, item.range, item.range);
      if (swap) where.swaps.push(swap);
      continue;
    }
    const name = identity(item);
    const old = name === undefined ? undefined : oldItems.find((o) => identity(o) === name);
    if (old) collectChanged(where, old, item, depth + 1);
  }
}

function collectChanged(where: Where, old: Node, changed: Node, depth: number): void {
  if (depth > MAX_DEPTH) return;
  // Flow collections are written whole by the library; only block ones keep parts.
  if (isMap(old) && isMap(changed) && !old.flow && !changed.flow) {
    collectMap(where, old.items as Pair<Node, Node>[], changed.items as Pair<Node, Node>[], depth);
  } else if (isSeq(old) && isSeq(changed) && !old.flow && !changed.flow) {
    collectSeq(where, old.items as Node[], changed.items as Node[], depth);
  }
}

/** A flow's id, an output's or input's name: what finds an item again after it changed. */
function identity(node: Node): string | undefined {
  if (!isMap(node)) return undefined;
  for (const key of ['id', 'name']) {
    const value: unknown = node.get(key);
    if (typeof value === 'string') return `${key}:${value}`;
  }
  return undefined;
}

function scalarKey(pair: Pair<Node, Node>): unknown {
  return isScalar(pair.key) ? pair.key.value : undefined;
}

type Range = [number, number, number] | null | undefined;

/** A copy of the original text for a range of the re-serialised one, when both start in the same column. */
function copyOf(where: Where, oldStart: Range, oldEnd: Range, newStart: Range, newEnd: Range): Swap | undefined {
  if (!oldStart || !oldEnd || !newStart || !newEnd) return undefined;
  if (column(where.original, oldStart[0]) !== column(where.plain, newStart[0])) return undefined;
  let text = where.original.slice(oldStart[0], oldEnd[2]);
  // The file's last entry may lack a final newline that the text after it now needs.
  if (where.plain[newEnd[2] - 1] === '\n' && !text.endsWith('\n')) text += '\n';
  return { from: newStart[0], to: newEnd[2], text };
}

function column(text: string, at: number): number {
  return at - (text.lastIndexOf('\n', at - 1) + 1);
}

/** One pass over the text (swaps do not overlap): a file of 1,000 flows has as many swaps. */
function apply(text: string, swaps: Swap[]): string {
  const parts: string[] = [];
  let at = 0;
  for (const swap of [...swaps].sort((a, b) => a.from - b.from)) {
    parts.push(text.slice(at, swap.from), swap.text);
    at = swap.to;
  }
  parts.push(text.slice(at));
  return parts.join('');
}

/** Whether `text` is the same document as `plain` (its values and comments): both re-serialise alike. */
function readsAs(text: string, plain: string): boolean {
  const doc = parse(text);
  return doc.errors.length === 0 && doc.toString(STRINGIFY_OPTIONS) === plain;
}
