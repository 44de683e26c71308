import { isMap, isSeq, parseDocument, visit, type Document, type YAMLMap, type YAMLSeq } from 'yaml';

/** Shared by the API's edits of the config file's YAML document. */

const PARSE_OPTIONS = { merge: true } as const;
/** No folding of long lines: URLs and keys stay on one line. (What an edit did not touch keeps its original text: keep-text.ts.) */
export const STRINGIFY_OPTIONS = { lineWidth: 0 } as const;

export function parse(text: string): Document {
  return parseDocument(text, PARSE_OPTIONS);
}

/** A top-level sequence (`flows`, `tasks`), made when `create` and absent. */
export function topSeq(doc: Document, key: string, create: boolean): YAMLSeq | undefined {
  const node = doc.get(key, true);
  if (isSeq(node)) return node;
  if (!create) return undefined;
  const seq = doc.createNode([]) as YAMLSeq;
  doc.set(key, seq);
  return seq;
}

export function findIndex(seq: YAMLSeq | undefined, key: string, value: string): number {
  if (!seq) return -1;
  return seq.items.findIndex((item) => isMap(item) && item.get(key) === value);
}

/**
 * The anchor of a map that an alias elsewhere in the file uses (`- &yt {...}` shared as
 * `<<: *yt`): changing the map in place would change every place that shares it.
 */
export function sharedAnchor(doc: Document, map: YAMLMap): string | undefined {
  const anchor = map.anchor;
  if (anchor === undefined) return undefined;
  let used = false;
  visit(doc, {
    Alias(_, alias) {
      if (alias.source !== anchor) return undefined;
      used = true;
      return visit.BREAK;
    },
  });
  return used ? anchor : undefined;
}

/** Sets each changed key on a YAML map; null removes the key (back to its default). */
export function patchMap(doc: Document, map: YAMLMap, changes: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) map.delete(key);
    else map.set(key, doc.createNode(value));
  }
}

/** A sequence written `[]` in flow style grows in block style once it has items. */
export function blockStyle(seq: YAMLSeq): void {
  if (seq.items.length === 0) seq.flow = false;
}
