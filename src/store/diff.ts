import { docEquals } from '../core/doc.js';
import type { DocState } from '../core/types.js';

/** The result of comparing a file's documents with what it held before. */
export interface FileDiff {
  /** Writes to commit, with fresh lwts: creates and updates as read, deletes as the last body with `_deleted`. */
  batch: Map<string, DocState>;
  /** The file's documents in file order (reusing unchanged state objects): the new "known" content. */
  next: Map<string, DocState>;
  /** Ids whose state in the index already equals the file (a pending write the edit happened to repeat). */
  settled: string[];
  created: number;
  updated: number;
  deleted: number;
}

/**
 * Diffs by key: `docs` (the file now) against `before` (what the file held when p2psync last read or wrote it).
 * `current` gives the store's state of an id, which may be ahead of the file (pending writes) or a tombstone.
 * A document that changed in the file wins over a pending write to it: the edit was noticed later.
 */
export function diffFile(
  docs: Map<string, DocState>,
  before: Map<string, DocState>,
  current: (id: string) => DocState | undefined,
): FileDiff {
  const out: FileDiff = { batch: new Map(), next: new Map(), settled: [], created: 0, updated: 0, deleted: 0 };
  for (const [id, doc] of docs) compareDoc(out, id, doc, before, current);
  for (const id of before.keys()) if (!docs.has(id)) deleteDoc(out, id, current);
  return out;
}

/**
 * `diffFile` when only some of the file's documents can differ from `before` (see `readDelta`): `next` is the file's
 * documents in order, where each one that is not in `changed` is the very object `before` holds for it, and
 * `removed` holds every id of `before` that may be gone. Costs what changed, not what the file holds.
 */
export function diffSpan(
  next: Map<string, DocState>,
  changed: Map<string, DocState>,
  removed: readonly string[],
  before: Map<string, DocState>,
  current: (id: string) => DocState | undefined,
): FileDiff {
  const out: FileDiff = { batch: new Map(), next, settled: [], created: 0, updated: 0, deleted: 0 };
  for (const [id, doc] of changed) compareDoc(out, id, doc, before, current);
  for (const id of removed) if (!next.has(id)) deleteDoc(out, id, current);
  return out;
}

/** One document of the file against what it held before (`out.next` gets the state to keep for it). */
function compareDoc(
  out: FileDiff,
  id: string,
  doc: DocState,
  before: Map<string, DocState>,
  current: (id: string) => DocState | undefined,
): void {
  const old = before.get(id);
  if (old && (old === doc || docEquals(old, doc))) {
    out.next.set(id, old);
    return;
  }
  const cur = current(id);
  if (cur && !cur._deleted && docEquals(cur, doc)) {
    out.next.set(id, cur);
    out.settled.push(id);
    return;
  }
  out.batch.set(id, doc);
  out.next.set(id, doc);
  if (old) out.updated++;
  else out.created++;
}

/** A document the file no longer holds: deleted, with its last body, unless the store has it deleted already. */
function deleteDoc(out: FileDiff, id: string, current: (id: string) => DocState | undefined): void {
  const cur = current(id);
  if (cur && !cur._deleted) {
    out.batch.set(id, { ...cur, _deleted: true });
    out.deleted++;
  }
}
