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
  const heldBefore = before instanceof EntryStates ? before : undefined;
  const changed: string[] = [];
  for (const [id, doc] of docs instanceof EntryStates ? docs.held() : docs) {
    const old = heldBefore ? (heldBefore.entryOf(id) ?? before.get(id)) : before.get(id);
    let v: Held = doc;
    if (old && same(old, doc)) v = old;
    else {
      const cur = current(id);
      if (cur && !cur.deleted && same(cur, doc)) {
        v = cur;
        out.settled.push(id);
      } else {
        changed.push(id);
        if (old) out.updated++;
        else out.created++;
      }
    }
    if (next !== docs || v !== doc) keep(next, id, v);
  }
  const deleted: string[] = [];
  for (const id of before.keys()) {
    if (docs.has(id)) continue;
    const cur = current(id);
    if (cur && !cur.deleted) deleted.push(id);
  }
  if (changed.length === next.size && deleted.length === 0) return out;
  const batch = new EntryStates();
  for (const id of changed) keep(batch, id, next.entryOf(id) ?? next.get(id)!);
  for (const id of deleted) batch.set(id, { ...current(id)!.doc, _deleted: true });
  out.deleted = deleted.length;
  out.batch = batch;
  return out;
}

type Held = IndexEntry | DocState;

function keep(map: EntryStates, id: string, v: Held): void {
  if (v instanceof IndexEntry) map.setEntry(id, v);
  else map.set(id, v);
}

/** Equal states (see `docEquals`): equal texts are, and anything else is compared parsed. */
function same(a: Held, b: Held): boolean {
  if (a === b) return true;
  if (a instanceof IndexEntry && b instanceof IndexEntry && a.sameText(b)) return true;
  return docEquals(a instanceof IndexEntry ? a.doc : a, b instanceof IndexEntry ? b.doc : b);
}
