import { getHeapSnapshot } from 'node:v8';

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/**
 * How many objects of each named class this process holds. Taking a heap snapshot
 * collects garbage first, so what is counted is what something still references: the
 * way to find objects a closed connection should have let go of.
 */
export async function liveInstances(classNames: readonly string[]): Promise<Record<string, number>> {
  const chunks: Buffer[] = [];
  for await (const chunk of getHeapSnapshot()) chunks.push(chunk as Buffer);
  const heap = JSON.parse(Buffer.concat(chunks).toString('utf8')) as HeapSnapshot;
  const fields = heap.snapshot.meta.node_fields;
  const stride = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const objectType = heap.snapshot.meta.node_types[0].indexOf('object');
  const counts: Record<string, number> = Object.fromEntries(classNames.map((n) => [n, 0]));
  for (let i = 0; i < heap.nodes.length; i += stride) {
    if (heap.nodes[i + typeAt] !== objectType) continue;
    const name = heap.strings[heap.nodes[i + nameAt]!]!;
    if (name in counts) counts[name]! += 1;
  }
  return counts;
}
