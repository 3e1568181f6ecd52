import type { Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { userFields } from '../core/doc.js';
import type { DocState, Json } from '../core/types.js';
import type { ByteBuffer, ChunkWriter } from './bytes.js';
import { IndexEntry } from './index-entry.js';

/**
 * Where every document sits in a user file as p2psync wrote it.
 *
 * A document's text is a pure function of its index entry (entries are replaced, never changed), so the next rewrite
 * copies the bytes of documents whose entry is still the same from the file written last time, and writes only the
 * ones that changed (from the entry's text: see `writeDoc`). With a big file that turns a rewrite from "serialise and encode everything" into a
 * few kernel copies plus the new documents, which matters while an initial sync grows the file by thousands of
 * documents between rewrites. Only the offsets are kept in memory (two typed arrays, nothing per document for the
 * garbage collector), not the text.
 */
export interface FileLayout {
  /** The documents in file order. */
  readonly entries: IndexEntry[];
  /** Byte offsets of document i's text: `[starts[i], ends[i])` (the arrays may be longer than `docs`). */
  starts: Float64Array;
  ends: Float64Array;
  /** The SHA-1 state over the file up to the end of its last document, where an append continues (see `appendLayout`). */
  hashAtEnd: Hash | undefined;
}

/** A file written earlier, still open, with its layout: the source of unchanged documents' bytes. */
export interface LayoutSource {
  handle: FileHandle;
  layout: FileLayout;
}

/** How documents sit in the file: `prefix doc sep doc sep ... doc suffix`, or `empty` without documents. */
export interface FileFrame {
  prefix: string;
  sep: string;
  suffix: string;
  empty: string;
  /** Nesting depth of the documents: 0 for NDJSON lines (compact), 1 in a top-level JSON array, 2 in a collection. */
  depth: number;
}

/** NDJSON: one compact line per document, each ending with a newline. */
export const NDJSON_FRAME: FileFrame = { prefix: '', sep: '\n', suffix: '\n', empty: '', depth: 0 };

/**
 * A JSON array as lowdb's JSONFile writes it (`JSON.stringify(data, null, 2)` plus a final newline), either at the
 * top level or as the member `collection` of `root`, whose other members keep their order and values.
 */
export function jsonFrame(collection: string | undefined, root: Record<string, Json> | undefined): FileFrame {
  if (collection === undefined) return { prefix: '[\n', sep: ',\n', suffix: '\n]\n', empty: '[]\n', depth: 1 };
  // The collection's array is spliced into the root's text where a unique marker string stands.
  const marker = `\u0000p2psync-docs-${process.pid}\u0000`;
  const rootText = JSON.stringify({ ...(root ?? {}), [collection]: marker }, null, 2);
  const quoted = JSON.stringify(marker);
  const i = rootText.indexOf(quoted);
  const before = rootText.slice(0, i);
  const after = rootText.slice(i + quoted.length) + '\n';
  return { prefix: before + '[\n', sep: ',\n', suffix: '\n  ]' + after, empty: before + '[]' + after, depth: 2 };
}

/**
 * Streams the file for `docs` into `w` and returns its layout. `from[k]`, when given, is the position in the
 * source's layout where document k may already be written; its bytes are copied only if the source holds the very
 * same entry there.
 */
export async function writeLayout(
  frame: FileFrame,
  docs: IndexEntry[],
  w: ChunkWriter,
  source?: LayoutSource,
  from?: ArrayLike<number>,
): Promise<FileLayout> {
  const n = docs.length;
  const starts = new Float64Array(n);
  const ends = new Float64Array(n);
  if (n === 0) {
    w.text(frame.empty);
    return { entries: docs, starts, ends, hashAtEnd: undefined };
  }
  const prev = source && from ? source.layout : undefined;
  const same = (k: number, j: number): boolean => j >= 0 && prev!.entries[j] === docs[k];
  w.text(frame.prefix);
  for (let k = 0; k < n;) {
    if (k > 0) w.text(frame.sep);
    const j0 = prev ? from![k]! : -1;
    if (!same(k, j0)) {
      starts[k] = w.position;
      writeDoc(w, docs[k]!, frame.depth);
      ends[k] = w.position;
      k++;
      if (w.full) await w.flush();
      continue;
    }
    // A run of documents that were neighbours in the source too: one copy, separators included.
    const p = prev!;
    let m = k + 1;
    while (m < n && from![m] === from![m - 1]! + 1 && same(m, from![m]!)) m++;
    const delta = w.position - p.starts[j0]!;
    await w.copyFrom(source!.handle, p.starts[j0]!, p.ends[from![m - 1]!]!);
    for (let q = k; q < m; q++) {
      starts[q] = p.starts[from![q]!]! + delta;
      ends[q] = p.ends[from![q]!]! + delta;
    }
    k = m;
  }
  const hashAtEnd = w.hashCopy();
  w.text(frame.suffix);
  return { entries: docs, starts, ends, hashAtEnd };
}

/**
 * Streams the file of `layout` (read from `source`, the file it describes) with `added` documents at the end, and
 * extends the layout to match. The common case of a growing store (an initial sync, new documents from peers)
 * then costs only the new documents: the old content up to its last document is one kernel copy, the hash resumes
 * where the last write left it, and nothing is done per old document. `w` must resume `layout.hashAtEnd` up to the
 * end of the last document. Fills in the offsets of the added documents (past the layout's end, so a failed write
 * leaves the layout as it was) and returns the new `hashAtEnd`; the caller adds the documents once the write
 * succeeded.
 */
export async function appendLayout(
  frame: FileFrame,
  layout: FileLayout,
  source: FileHandle,
  added: readonly IndexEntry[],
  w: ChunkWriter,
): Promise<Hash | undefined> {
  const kept = layout.entries.length;
  const n = kept + added.length;
  await w.copyFrom(source, 0, layout.ends[kept - 1]!);
  if (layout.starts.length < n) {
    // Room to grow, so that a series of appends does not copy the offsets every time.
    const capacity = Math.ceil(n * 1.5);
    const starts = new Float64Array(capacity);
    const ends = new Float64Array(capacity);
    starts.set(layout.starts.subarray(0, kept));
    ends.set(layout.ends.subarray(0, kept));
    layout.starts = starts;
    layout.ends = ends;
  }
  const { starts, ends } = layout;
  for (let k = kept; k < n; k++) {
    w.text(frame.sep);
    starts[k] = w.position;
    writeDoc(w, added[k - kept]!, frame.depth);
    ends[k] = w.position;
    if (w.full) await w.flush();
  }
  const hashAtEnd = w.hashCopy();
  w.text(frame.suffix);
  return hashAtEnd;
}

/** The whole file for `docs`, in memory (for one-off writes: the CRUD commands, recreating a deleted file). */
export function renderAll(frame: FileFrame, docs: Iterable<DocState>, out: ByteBuffer): Buffer {
  out.reset();
  let k = 0;
  for (const doc of docs) {
    out.text(k++ === 0 ? frame.prefix : frame.sep);
    writeDoc(out, new IndexEntry('', doc, 0), frame.depth);
  }
  out.text(k === 0 ? frame.empty : frame.suffix);
  return out.bytes;
}

/**
 * Writes a document's user fields as they appear in the file at `depth` (see `FileFrame.depth`). A live document's
 * NDJSON line is the text its entry holds (`IndexEntry.fileText`): nothing is serialised again.
 */
export function writeDoc(out: { text(s: string): void }, entry: IndexEntry, depth: number): void {
  if (depth === 0) {
    out.text(entry.fileText ?? JSON.stringify(userFields(entry.doc)));
    return;
  }
  // Pretty-printing the document inside `depth` arrays indents it exactly as it sits in the file; cutting it out
  // is cheaper than re-indenting a stand-alone rendering line by line.
  let wrapped = entry.fields() as Json;
  for (let d = 0; d < depth; d++) wrapped = [wrapped];
  const pretty = JSON.stringify(wrapped, null, 2);
  const open = pretty.indexOf('{');
  out.text(pretty.slice(pretty.lastIndexOf('\n', open) + 1, pretty.lastIndexOf('}') + 1));
}
