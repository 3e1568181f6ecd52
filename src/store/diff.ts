import { docEquals } from '../core/doc.js';
import type { DocState } from '../core/types.js';
import { EntryStates } from './entry-states.js';
import { IndexEntry } from './index-entry.js';

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
 * `current` gives the store's entry of an id, which may be ahead of the file (pending writes) or a tombstone.
 * A document that changed in the file wins over a pending write to it: the edit was noticed later.
 *
 * States held as entries (`EntryStates`, as a parsed file and `knownDocs` give them) are compared by their texts
 * first and parsed only when the texts differ, and the batch and `next` keep them as entries: diffing a big file
 * never has every document parsed at once. Such a `docs` map is taken over as `next` (and as the batch too when
 * every document in it changed and none was deleted, as when a store opens a file for the first time): a million
 * documents then cost one map, not three.
 */
export function diffFile(
  docs: Map<string, DocState>,
  before: Map<string, DocState>,
  current: (id: string) => IndexEntry | undefined,
): FileDiff {
  const next = docs instanceof EntryStates ? docs : new EntryStates();
  const out: FileDiff = { batch: next, next, settled: [], created: 0, updated: 0, deleted: 0 };
  const changed: string[] = [];
  for (const [id, doc] of docs instanceof EntryStates ? docs.held() : docs) {
    const v = compareDoc(out, changed, id, doc, heldIn(before, id), current);
    if (next !== docs || v !== doc) next.hold(id, v);
  }
  const deleted: string[] = [];
  for (const id of before.keys()) if (!docs.has(id) && isLive(current(id))) deleted.push(id);
  if (changed.length === next.size && deleted.length === 0) return out;
  out.batch = batchOf(next, changed, deleted, current);
  out.deleted = deleted.length;
  return out;
}

/**
 * `diffFile` when only some of the file's documents can differ from `before` (see `readDelta`): `next` is the file's
 * documents in order, where each one that is not in `changed` is held as `before` holds it, and `removed` holds
 * every id of `before` that may be gone. Costs what changed, not what the file holds.
 */
export function diffSpan(
  next: EntryStates,
  changed: Map<string, DocState>,
  removed: readonly string[],
  before: Map<string, DocState>,
  current: (id: string) => IndexEntry | undefined,
): FileDiff {
  const out: FileDiff = { batch: next, next, settled: [], created: 0, updated: 0, deleted: 0 };
  const written: string[] = [];
  for (const [id, doc] of changed) {
    const v = compareDoc(out, written, id, doc, heldIn(before, id), current);
    if (v !== doc) next.hold(id, v);
  }
  const deleted = removed.filter((id) => !next.has(id) && isLive(current(id)));
  out.batch = batchOf(next, written, deleted, current);
  out.deleted = deleted.length;
  return out;
}

type Held = IndexEntry | DocState;

/**
 * One document of the file (`doc`) against what the file held for it (`old`): returns the state to keep for it (the
 * one already held when equal), and counts it and lists it in `changed` when it is a write.
 */
function compareDoc(
  out: FileDiff,
  changed: string[],
  id: string,
  doc: Held,
  old: Held | undefined,
  current: (id: string) => IndexEntry | undefined,
): Held {
  if (old && same(old, doc)) return old;
  const cur = current(id);
  if (cur && !cur.deleted && same(cur, doc)) {
    out.settled.push(id);
    return cur;
  }
  changed.push(id);
  if (old) out.updated++;
  else out.created++;
  return doc;
}

function heldIn(map: Map<string, DocState>, id: string): Held | undefined {
  return map instanceof EntryStates ? (map.entryOf(id) ?? map.get(id)) : map.get(id);
}

function isLive(entry: IndexEntry | undefined): boolean {
  return entry !== undefined && !entry.deleted;
}

/** The writes: the changed documents as `next` holds them, and deletions with the last body the store has. */
function batchOf(
  next: EntryStates,
  changed: readonly string[],
  deleted: readonly string[],
  current: (id: string) => IndexEntry | undefined,
): EntryStates {
  const batch = new EntryStates();
  for (const id of changed) batch.hold(id, next.entryOf(id) ?? next.get(id)!);
  for (const id of deleted) batch.set(id, { ...current(id)!.doc, _deleted: true });
  return batch;
}

/** Equal states (see `docEquals`): equal texts are, and anything else is compared parsed. */
function same(a: Held, b: Held): boolean {
  if (a === b) return true;
  if (a instanceof IndexEntry && b instanceof IndexEntry && a.sameText(b)) return true;
  return docEquals(a instanceof IndexEntry ? a.doc : a, b instanceof IndexEntry ? b.doc : b);
}
