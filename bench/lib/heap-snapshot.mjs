/**
 * Heap snapshots (`v8.writeHeapSnapshot`) summarised by constructor: what two snapshots of one process, taken after
 * forced GCs, differ in. An object kept per message, per batch or per rebalance shows as a constructor whose count
 * keeps rising.
 */
import { readFileSync } from 'node:fs';

/** Count and self size of the snapshot's nodes by kind: `object:<constructor>`, `closure:<name>`, `(<type>)`. */
export function summarizeSnapshot(file) {
  return summarizeNodes(JSON.parse(readFileSync(file, 'utf8')));
}

export function summarizeNodes(snapshot) {
  const { node_fields: fields, node_types: nodeTypes } = snapshot.snapshot.meta;
  const width = fields.length;
  const types = nodeTypes[0];
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const { nodes, strings } = snapshot;
  const byKind = new Map();
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + typeAt]];
    const kind =
      type === 'object' || type === 'closure' || type === 'native'
        ? `${type}:${strings[nodes[i + nameAt]].slice(0, 80)}`
        : `(${type})`;
    const entry = byKind.get(kind) ?? { count: 0, size: 0 };
    entry.count++;
    entry.size += nodes[i + sizeAt];
    byKind.set(kind, entry);
  }
  return byKind;
}

/** Every kind of either summary with its count and size in each and the differences, most added first. */
export function compareSummaries(before, after) {
  const rows = [];
  for (const kind of new Set([...before.keys(), ...after.keys()])) {
    const a = before.get(kind) ?? { count: 0, size: 0 };
    const b = after.get(kind) ?? { count: 0, size: 0 };
    rows.push({
      kind,
      countBefore: a.count,
      countAfter: b.count,
      countDelta: b.count - a.count,
      sizeDelta: b.size - a.size,
    });
  }
  return rows.sort((x, y) => y.countDelta - x.countDelta || y.sizeDelta - x.sizeDelta);
}
