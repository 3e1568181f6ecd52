import { isUtf8 } from 'node:buffer';
import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { docKey } from '../core/doc.js';
import { P2PSyncError } from '../core/errors.js';
import type { DocState, Json } from '../core/types.js';
import { EntryStates } from './entry-states.js';
import { IndexEntry, flat } from './index-entry.js';
import { ByteBuffer, type ChunkWriter } from './bytes.js';
import {
  appendLayout,
  jsonFrame,
  NDJSON_FRAME,
  renderAll,
  writeLayout,
  type FileFrame,
  type FileLayout,
  type LayoutSource,
} from './file-image.js';
import {
  fingerprintOf,
  fsyncDir,
  readVersioned,
  sameFingerprint,
  storeTarget,
  writeFileAtomic,
  writeFileAtomicWith,
  type Fingerprint,
  type FileVersion,
  type VersionedText,
} from './fs-util.js';
import { lineColumn, scanJson } from './json-locate.js';
import { jsonArrayElements } from './json-elements.js';
import { handleLines } from './line-reader.js';

export type StoreFormat = 'json' | 'ndjson';

export interface UserFileOptions {
  path: string;
  format: StoreFormat;
  primaryKey: string;
  /** JSON only: the documents are the array under this key of a top-level object. */
  collection?: string;
}

/** The user's file, parsed and validated. */
export interface UserContent {
  /** Documents in file order, as doc states (`_deleted: false`, internal fields dropped). */
  docs: Map<string, DocState>;
  /** JSON with a collection: the top-level object; its other members are written back unchanged. */
  root?: Record<string, Json>;
  /** JSON with a collection: the object has no member of that name yet (it is added at the first write). */
  collectionMissing?: true;
}

/** The raw text of the user's file and the version it was read at (`appended`: see `readVersioned`). */
export type UserText = VersionedText;

/**
 * The user's file in one of the two formats: parse with precise errors, serialise, read and write atomically.
 * It writes JSON the way lowdb's `JSONFile` does (2-space indent, final newline), so a lowdb app and p2psync can
 * share a file (test/store/outside-edits.test.ts runs one). It does not use lowdb: lowdb's adapters read and write
 * the whole parsed value, while crash safety needs a writer that fsyncs the file and its directory and tells which
 * version it replaced, and a big store needs rewrites that copy unchanged documents' bytes (docs/STORES.md).
 */
export class UserFile {
  readonly name: string;
  private frame: { root: Record<string, Json> | undefined; frame: FileFrame } | undefined;
  /** The last write's layout, and its file still open (copies of unchanged documents come from it). */
  private last: FileLayout | undefined;
  private source: { handle: FileHandle; written: Fingerprint } | undefined;
  private readonly chunks = new ByteBuffer();
  private lastVersion: FileVersion | undefined;

  constructor(readonly options: UserFileOptions) {
    this.name = options.path;
  }

  /** The version of the last `read` or `write`. */
  get version(): FileVersion | undefined {
    return this.lastVersion;
  }

  /** Reads the file; with `since`, also tells whether it only grew past that version (see `readVersioned`). */
  async readText(since?: FileVersion): Promise<UserText | undefined> {
    const r = await readVersioned(this.options.path, since);
    if (r) this.lastVersion = r.version;
    return r;
  }

  /**
   * Reads and parses the file (undefined if it does not exist). An NDJSON file is parsed a line at a time while it
   * is read, a JSON array an element at a time, so that its text is never held whole next to its documents (for a
   * big store, as much memory again as the file). Anything unusual (an element that does not parse or validate, a
   * collection file, a change while it was read) sends it down the whole-text path, whose errors say exactly where.
   */
  async readParsed(blankIsEmpty: boolean): Promise<{ content: UserContent; version: FileVersion } | undefined> {
    const streamed = this.options.collection === undefined ? await this.streamDocs() : undefined;
    if (streamed) {
      this.lastVersion = streamed.version;
      return streamed;
    }
    const raw = await this.readText();
    return raw && { content: this.parse(raw.text, blankIsEmpty), version: raw.version };
  }

  async writeText(text: string | Buffer): Promise<FileVersion> {
    this.lastVersion = await writeFileAtomic(this.options.path, text);
    return this.lastVersion;
  }

  /** The content of a new, empty store file. */
  emptyText(): string {
    if (this.options.format === 'ndjson') return '';
    const c = this.options.collection;
    return (c === undefined ? '[]' : JSON.stringify({ [c]: [] }, null, 2)) + '\n';
  }

  /**
   * Parses and validates. Throws a P2PSyncError naming the file, line (and column) and key. A blank JSON file
   * counts as empty only when `blankIsEmpty` (at open: `touch notes.json` is a fine start; during a live session
   * a blank file is more likely a writer that truncated and has not written yet).
   */
  parse(text: string, blankIsEmpty: boolean): UserContent {
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    return this.options.format === 'json' ? this.parseJson(text, blankIsEmpty) : this.parseNdjson(text);
  }

  /** The file content for these documents (tombstones must already be left out). */
  serialise(docs: Iterable<DocState>, root?: Record<string, Json>): Buffer {
    return renderAll(this.frameFor(root), docs, new ByteBuffer());
  }

  /**
   * Where each document sits in the file as p2psync last wrote it (`writeDocs`, `appendDocs`); a failed write
   * leaves it as it was. Undefined before the first write.
   */
  get layout(): FileLayout | undefined {
    return this.last;
  }

  /**
   * Replaces the file with these documents (tombstones must already be left out), atomically. Documents that the
   * last write wrote with the same state object, at position `from[k]` of its layout, are copied from that version
   * of the file (kept open for this: it stays readable even after the file was replaced) instead of being
   * serialised again. The copy is taken only while that version is unchanged: an in-place edit changes its size or
   * mtime, which is the same evidence `p2psync` trusts to tell an unchanged file everywhere else. The new file is
   * fsynced before it replaces the old one, the directory is not: see `syncDir`.
   */
  async writeDocs(
    docs: IndexEntry[],
    root: Record<string, Json> | undefined,
    from?: ArrayLike<number>,
  ): Promise<FileVersion> {
    const frame = this.frameFor(root);
    const source = await this.takeSource();
    let layout: FileLayout | undefined;
    const { version, handle } = await this.replace(source, async (w) => {
      layout = await writeLayout(frame, docs, w, source, from);
    });
    this.last = layout;
    this.source = { handle, written: version };
    return version;
  }

  /**
   * Like `writeDocs` with the documents of the last write followed by `added`, when that write can be continued:
   * see `appendLayout`. Returns undefined (writing nothing) when it cannot, e.g. the kept version was edited in
   * place; the caller then writes every document.
   */
  async appendDocs(added: IndexEntry[], root: Record<string, Json> | undefined): Promise<FileVersion | undefined> {
    const layout = this.last;
    if (!this.source || !layout || layout.entries.length === 0 || !layout.hashAtEnd) return undefined;
    const source = await this.takeSource();
    if (!source) return undefined;
    const frame = this.frameFor(root);
    let hashAtEnd: Hash | undefined;
    const resume = { hash: layout.hashAtEnd.copy(), upTo: layout.ends[layout.entries.length - 1]! };
    const { version, handle } = await this.replace(
      source,
      async (w) => {
        hashAtEnd = await appendLayout(frame, layout, source.handle, added, w);
      },
      resume,
    );
    for (const e of added) layout.entries.push(e);
    layout.hashAtEnd = hashAtEnd;
    this.source = { handle, written: version };
    return version;
  }

  /**
   * fsyncs the directory of the file, so that the last `writeDocs` or `appendDocs` (whose rename it holds) survives a
   * power cut. Left to the caller so that the next write need not wait for it (best effort, as `fsyncDir`).
   */
  async syncDir(): Promise<void> {
    const target = await storeTarget(this.options.path).catch(() => this.options.path);
    await fsyncDir(dirname(target));
  }

  /** Releases the kept version of the file. */
  async close(): Promise<void> {
    const source = this.source;
    this.source = undefined;
    await source?.handle.close().catch(() => undefined);
  }

  /** The kept version of the file with its layout, if it is still as written; it is closed by the next `replace`. */
  private async takeSource(): Promise<LayoutSource | undefined> {
    const source = this.source;
    this.source = undefined;
    if (!source || !this.last) return undefined;
    if (await stillAsWritten(source)) return { handle: source.handle, layout: this.last };
    await source.handle.close().catch(() => undefined);
    return undefined;
  }

  /** Writes the file atomically through `fill`, keeps the new version open and closes `source` in any case. */
  private async replace(
    source: LayoutSource | undefined,
    fill: (w: ChunkWriter) => Promise<void>,
    resume?: { hash: Hash; upTo: number },
  ): Promise<{ version: FileVersion; handle: FileHandle }> {
    let open = source !== undefined;
    try {
      const { version, handle } = await writeFileAtomicWith(
        this.options.path,
        this.chunks,
        async (w) => {
          await fill(w);
          // Closed before the rename: some platforms refuse to replace a file that is open.
          open = false;
          await source?.handle.close();
        },
        true,
        resume,
        false,
      );
      this.lastVersion = version;
      return { version, handle: handle! };
    } finally {
      if (open) await source?.handle.close().catch(() => undefined);
    }
  }

  private streamDocs(): Promise<{ content: UserContent; version: FileVersion } | undefined> {
    return streamDocsFile(this.options.path, this.options.format, this.options.primaryKey);
  }

  private frameFor(root: Record<string, Json> | undefined): FileFrame {
    if (this.options.format === 'ndjson') return NDJSON_FRAME;
    // The root's other members change only with outside edits; its text is not worth rebuilding per rewrite.
    if (!this.frame || this.frame.root !== root) this.frame = { root, frame: jsonFrame(this.options.collection, root) };
    return this.frame.frame;
  }

  private parseJson(text: string, blankIsEmpty: boolean): UserContent {
    const file = this.name;
    const c = this.options.collection;
    let value: unknown;
    if (text.trim() === '') {
      if (!blankIsEmpty)
        throw new P2PSyncError(
          'E_PARSE',
          `${file}: the file is empty (expected a JSON ${c === undefined ? 'array' : 'object'})`,
          { file, line: 1, column: 1 },
        );
      value = c === undefined ? [] : {};
    } else {
      try {
        value = JSON.parse(text);
      } catch (err) {
        const found = scanJson(text, c).error;
        const at = lineColumn(text, found?.offset ?? 0);
        const why = found?.message ?? (err as Error).message;
        throw new P2PSyncError('E_PARSE', `${file}:${at.line}:${at.column}: invalid JSON: ${why}`, { file, ...at });
      }
    }
    let list: unknown;
    let root: Record<string, Json> | undefined;
    let missing = false;
    if (c === undefined) {
      if (!Array.isArray(value)) {
        const hint = isPlainObject(value)
          ? `; it is an object, so pass --collection with the key of the array (keys holding arrays: ${arrayKeys(value).join(', ') || 'none'})`
          : '';
        throw new P2PSyncError('E_BAD_COLLECTION', `${file}: expected a top-level array of documents${hint}`, { file });
      }
      list = value;
    } else {
      if (!isPlainObject(value)) {
        throw new P2PSyncError('E_BAD_COLLECTION', `${file}: --collection "${c}" needs a top-level JSON object`, {
          file,
          collection: c,
        });
      }
      root = value as Record<string, Json>;
      missing = !Object.hasOwn(root, c);
      list = missing ? [] : root[c];
      if (!Array.isArray(list)) {
        throw new P2PSyncError('E_BAD_COLLECTION', `${file}: "${c}" is not an array of documents`, {
          file,
          collection: c,
        });
      }
      // The documents live on in `docs`; keep the root small.
      root = { ...root, [c]: [] };
    }
    const items = list as unknown[];
    let offsets: number[] | undefined;
    const where = (i: number): { line: number; column: number } => {
      offsets ??= scanJson(text, c).elements;
      return lineColumn(text, offsets[i] ?? 0);
    };
    const docs = this.collect(
      items.length,
      (i) => items[i],
      (i) => ({ ...where(i), index: i }),
    );
    return root ? { docs, root, ...(missing ? { collectionMissing: true as const } : {}) } : { docs };
  }

  private parseNdjson(text: string): UserContent {
    const file = this.name;
    const lines = text.split('\n');
    const values: unknown[] = [];
    const lineNo: number[] = [];
    for (let i = 0; i < lines.length; i++) {
      let line = lines[i]!;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line.trim() === '') continue;
      try {
        values.push(JSON.parse(line));
      } catch (err) {
        const found = scanJson(line).error;
        const column = (found?.offset ?? 0) + 1;
        const why = found?.message ?? (err as Error).message;
        throw new P2PSyncError('E_PARSE', `${file}:${i + 1}:${column}: invalid JSON: ${why}`, {
          file,
          line: i + 1,
          column,
        });
      }
      lineNo.push(i + 1);
    }
    return {
      docs: this.collect(
        values.length,
        (i) => values[i],
        (i) => ({ line: lineNo[i]!, column: 1 }),
      ),
    };
  }

  /** Validates documents and indexes them by key; `where(i)` locates item i for error messages (lazily). */
  private collect(
    count: number,
    item: (i: number) => unknown,
    where: (i: number) => { line: number; column: number; index?: number },
  ): Map<string, DocState> {
    const file = this.name;
    const pk = this.options.primaryKey;
    const docs = new EntryStates();
    for (let i = 0; i < count; i++) {
      const v = item(i);
      if (!isPlainObject(v)) {
        const at = where(i);
        throw new P2PSyncError(
          'E_NOT_OBJECT',
          `${file}:${at.line}:${at.column}: a document must be a JSON object, got ${describe(v)}`,
          { file, ...at },
        );
      }
      const id = docKey(v, pk);
      if (id === undefined) {
        const at = where(i);
        const got = v[pk] === undefined ? 'it is missing' : `got ${describe(v[pk])}`;
        throw new P2PSyncError(
          'E_BAD_KEY',
          `${file}:${at.line}:${at.column}: the primary key "${pk}" must be a non-empty string; ${got}`,
          { file, ...at, key: pk },
        );
      }
      const reserved = reservedField(v);
      if (reserved !== undefined) {
        const at = where(i);
        throw reservedFieldError(`${file}:${at.line}:${at.column}`, id, reserved, { file, ...at });
      }
      if (docs.has(id)) {
        const at = where(i);
        let first = 0;
        while (first < i && docKey(item(first) as Record<string, unknown>, pk) !== id) first++;
        const firstLine = where(first).line;
        throw new P2PSyncError(
          'E_DUPLICATE_KEY',
          `${file}:${at.line}:${at.column}: duplicate ${pk} "${id}" (first at line ${firstLine})`,
          { file, ...at, key: id, field: pk, firstLine },
        );
      }
      holdDoc(docs, id, v);
    }
    return docs;
  }
}

/** See `UserFile.readParsed`: undefined when the file has to be read whole. */
async function streamDocsFile(
  path: string,
  format: StoreFormat,
  primaryKey: string,
): Promise<{ content: UserContent; version: FileVersion } | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(await storeTarget(path), 'r');
  } catch {
    return undefined; // the whole-text path finds it missing or reports why it cannot be read
  }
  try {
    const before = fingerprintOf(await handle.stat());
    const sha1 = createHash('sha1');
    let size = 0;
    const hash = {
      update(bytes: Buffer): void {
        size += bytes.length;
        sha1.update(bytes);
      },
    };
    const docs = new EntryStates();
    const take = (text: string): boolean => {
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch {
        return false;
      }
      if (!isPlainObject(v)) return false;
      const id = docKey(v, primaryKey);
      if (id === undefined || reservedField(v) !== undefined || docs.has(id)) return false;
      holdDoc(docs, id, v);
      return true;
    };
    if (format === 'ndjson') {
      for await (const { text, utf8, line } of handleLines(handle, path, 'read', { hash, checkUtf8: true })) {
        let t = line === 1 && text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
        if (t.endsWith('\r')) t = t.slice(0, -1);
        if (t.trim() === '') continue;
        if (!utf8 || !take(t)) return undefined;
      }
    } else {
      for await (const bytes of jsonArrayElements(handle, path, hash)) {
        if (!isUtf8(bytes) || !take(bytes.toString('utf8'))) return undefined;
      }
    }
    const after = fingerprintOf(await handle.stat());
    // An in-place writer was busy meanwhile: the whole-text path reads again.
    if (!sameFingerprint(before, after) || size !== after.size) return undefined;
    return { content: { docs }, version: { ...after, hash: sha1.digest('hex') } };
  } catch {
    return undefined; // NotAnArray, an I/O error: the whole-text path reads it or reports what is wrong
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** The kept file was not modified in place since it was written (replacing it by rename leaves it intact). */
async function stillAsWritten(source: { handle: FileHandle; written: Fingerprint }): Promise<boolean> {
  try {
    const s = await source.handle.stat();
    return s.size === source.written.size && s.mtimeMs === source.written.mtimeMs;
  } catch {
    return false;
  }
}

/**
 * Fields RxDB keeps for itself. p2psync keeps their equivalents in the sidecar, so a user document (in the file or
 * in `put` input) that carries one is refused rather than losing it silently at the next rewrite. Documents from
 * peers carry `_deleted` (and may carry the others) on the wire: they are not parsed here.
 */
export const RESERVED_FIELDS = ['_deleted', '_meta', '_rev', '_attachments'] as const;

/** The first reserved field `v` carries, if any. */
export function reservedField(v: Record<string, unknown>): string | undefined {
  return RESERVED_FIELDS.find((f) => Object.hasOwn(v, f));
}

export function reservedFieldError(
  where: string,
  id: string,
  field: string,
  details: Record<string, unknown>,
): P2PSyncError {
  return new P2PSyncError(
    'E_RESERVED_FIELD',
    `${where}: document "${id}" carries the reserved field "${field}" (p2psync and RxDB keep it for themselves); remove it`,
    {
      ...details,
      id,
      field,
    },
  );
}

/**
 * A freshly parsed, validated object is kept as its text only (`IndexEntry`): a big file never has every document
 * parsed at once, only the one being read.
 */
function holdDoc(docs: EntryStates, id: string, v: Record<string, unknown>): void {
  // Validated: no reserved field at the top level, so these are the user's fields exactly.
  docs.setEntry(id, IndexEntry.ofUserText(id, flat(JSON.stringify(v)), 0));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function arrayKeys(o: Record<string, unknown>): string[] {
  return Object.keys(o).filter((k) => Array.isArray(o[k]));
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return v === '' ? 'an empty string' : 'a string';
  return `a ${typeof v}`;
}
