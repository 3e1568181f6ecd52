import type { Json } from '../core/types.js';
import type { DocIndex, IndexEntry } from './doc-index.js';
import { EntryStates } from './entry-states.js';
import type { FileLayout } from './file-image.js';

/**
 * The user's file part of a write: either every document in file order with the new `known` (`docs`, `from`,
 * `next`), or, when documents were only added, just those (`added`: appended to the file and to `known`).
 */
export type FilePlan =
  | {
      root: Record<string, Json> | undefined;
      docs: IndexEntry[];
      from: Int32Array;
      next: EntryStates;
      added?: undefined;
    }
  | { root: Record<string, Json> | undefined; added: IndexEntry[]; docs?: undefined };

/**
 * Entries written since the last write, as pushed at commit time: keeps per-document bookkeeping to an array push
 * (a burst of 100k documents would otherwise cost two big Sets). An entry is pending only while it is the current
 * one for its id; a later write of the same id pushes its own entry and the older one is skipped.
 */
export function currentEntries(pending: readonly IndexEntry[], index: DocIndex): IndexEntry[] {
  const out: IndexEntry[] = [];
  for (const e of pending) if (index.get(e.id) === e) out.push(e);
  return out;
}

/**
 * The user's file after writing `changed` (current entries): the documents of `known` in their order with their
 * current states (deleted ones left out), then new documents at the end. `from` maps each to its position in
 * `layout` when `known` follows the layout's order (`aligned`), or by id otherwise.
 *
 * When documents were only added (`replacing` false: no entry replaced a document this store had, so none can be
 * in the file) and the file is p2psync's own last write, only those are planned: the file is appended to (see
 * `UserFile.appendDocs`), which needs no map of every document (`known` is not even built).
 */
export function planFile(
  known: () => ReadonlyMap<string, unknown>,
  layout: FileLayout | undefined,
  aligned: boolean,
  replacing: boolean,
  changed: readonly IndexEntry[],
  index: DocIndex,
  root: Record<string, Json> | undefined,
): FilePlan | undefined {
  if (aligned && layout && layout.entries.length > 0 && !replacing) {
    const added = changed.filter((e) => !e.deleted);
    // Only deletes of documents the file never held: nothing to write.
    if (added.length === 0) return undefined;
    return { root, added };
  }
  const pos = layout && !aligned ? positionsIn(layout) : undefined;
  const next = new EntryStates();
  const docs: IndexEntry[] = [];
  const from: number[] = [];
  let i = 0;
  for (const id of known().keys()) {
    const e = index.get(id);
    if (e && !e.deleted) {
      next.setEntry(id, e);
      docs.push(e);
      from.push(pos ? (pos.get(id) ?? -1) : i);
    }
    i++;
  }
  for (const e of changed) {
    if (e.deleted || next.has(e.id)) continue;
    next.setEntry(e.id, e);
    docs.push(e);
    from.push(pos?.get(e.id) ?? -1);
  }
  return { docs, from: Int32Array.from(from), root, next };
}

/** The documents of a layout by id, in file order. */
export function docsOf(layout: FileLayout): EntryStates {
  const out = new EntryStates();
  for (const e of layout.entries) out.setEntry(e.id, e);
  return out;
}

/** Position of each document in a layout, by id: to reuse it once `known` no longer follows its order. */
function positionsIn(layout: FileLayout): Map<string, number> {
  const pos = new Map<string, number>();
  layout.entries.forEach((e, i) => pos.set(e.id, i));
  return pos;
}
