import { docEquals } from '../core/doc.js';
import type { DocState } from '../core/types.js';
import type { IndexEntry } from './doc-index.js';
import type { SidecarContent } from './sidecar.js';

// The recovery rules of docs/STORES.md ("Durability") that need both the user's file and the journal.

/**
 * A crash between a rewrite of the user's file and the journal's record of it leaves a file that holds some of the
 * write-ahead states newer than the last recorded save. Per document, a file state equal to one of those (or a
 * document missing where one of them deleted it) is p2psync's own write, not an outside edit: `before` takes it, so
 * the diff ignores it and the journal's latest state stays (and is written into the file).
 */
export function ownUnrecordedSave(
  before: Map<string, DocState>,
  inFile: Map<string, DocState>,
  unsavedStates: Map<string, DocState[]>,
): void {
  for (const [id, states] of unsavedStates) {
    const doc = inFile.get(id);
    if (doc) {
      if (states.some((s) => !s._deleted && docEquals(s, doc))) before.set(id, doc);
    } else if (states.some((s) => s._deleted)) before.delete(id);
  }
}

/** Every document's latest state in a loaded journal (write-ahead records over the file's). */
export function latest(saved: {
  docs: Map<string, IndexEntry>;
  unsaved: Map<string, IndexEntry>;
}): Map<string, IndexEntry> {
  if (saved.unsaved.size === 0) return saved.docs;
  const out = new Map(saved.docs);
  for (const e of saved.unsaved.values()) if ((out.get(e.id)?.lwt ?? -Infinity) < e.lwt) out.set(e.id, e);
  return out;
}

/**
 * The live documents a store would hold after opening: the file's documents with the journal's unsaved write-ahead
 * states on top, wherever the file still shows what the journal says it held (or p2psync's own unrecorded write).
 * Read-only: for `ls` and `get`, which must show acknowledged writes a killed owner left in the journal only.
 */
export function withUnsaved(inFile: Map<string, DocState>, saved: SidecarContent | undefined): Map<string, DocState> {
  if (!saved || saved.unsaved.size === 0) return inFile;
  const before = new Map<string, DocState>();
  for (const e of saved.docs.values()) if (!e.deleted) before.set(e.id, e.doc);
  ownUnrecordedSave(before, inFile, saved.unsavedStates);
  const out = new Map(inFile);
  for (const e of saved.unsaved.values()) {
    if ((saved.docs.get(e.id)?.lwt ?? -Infinity) >= e.lwt) continue;
    const was = before.get(e.id);
    const now = inFile.get(e.id);
    // Edited outside since: the edit wins, as it would on open.
    if (was === undefined ? now !== undefined : now === undefined || !docEquals(was, now)) continue;
    if (e.deleted) out.delete(e.id);
    else out.set(e.id, e.doc);
  }
  return out;
}
