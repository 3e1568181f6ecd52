import { docEquals, docKey, toDocState, userFields } from '../core/doc.js';
import { P2PSyncError } from '../core/errors.js';
import type { Store } from '../core/store.js';
import type { DocState, Json } from '../core/types.js';
import { lineColumn, scanJson } from './json-locate.js';
import { FileLock } from './lock.js';
import { openStore, refuseEncrypted, resolveStoreOptions, type FileStoreOptions } from './open.js';
import { withUnsaved } from './recovery.js';
import { Sidecar, sidecarPath, writeLockPath } from './sidecar.js';
import { reservedField, reservedFieldError, UserFile } from './user-file.js';

/**
 * The shell CRUD operations behind `p2psync ls|get|put|rm`.
 *
 * Reads (`ls`, `get`) parse the user's file (plus the journal's unsaved writes) under the short write lock and
 * touch nothing. Writes (`put`, `rm`) open the store as its owner
 * when no other process owns it (lwts and tombstones go into the sidecar), or, while another process (a `join`)
 * owns it, edit the user's file alone under the short write lock: re-read, change, replace atomically. The owner
 * takes the same lock for its own rewrites and ingests the edit as an outside edit, so neither side loses an update.
 */
export type CrudOptions = Pick<
  FileStoreOptions,
  'path' | 'format' | 'primaryKey' | 'collection' | 'lockTimeoutMs' | 'emit'
> & {
  /** An encrypted store's codec (src/crypt); without it an encrypted store is refused (E_KEY_REQUIRED). */
  codec?: DocCodec | undefined;
};

/**
 * How documents are stored when that differs from how they are read (encryption at rest): `wrap` puts a store
 * opened here behind the codec; `decode` / `encode` turn documents of the file into what the user sees and back.
 * `refresh` runs under the write lock before a direct edit of the file (the keys may have changed meanwhile).
 */
export interface DocCodec {
  /** Before the store is opened (opening may write): checks the file, e.g. that every value decrypts. */
  beforeOpen(): Promise<void>;
  wrap(store: Store): Promise<Store>;
  decode(doc: DocState): DocState;
  encode(doc: DocState): DocState;
  refresh(): Promise<void>;
}

/** A document as the user sees it: user fields only. */
export type UserDoc = Record<string, Json>;

/** How a write reached the store: through the store (this process owned it) or as a file edit (another did). */
export type WriteRoute = 'store' | 'file';

export interface PutResult {
  created: string[];
  updated: string[];
  unchanged: string[];
  via: WriteRoute;
}

export interface RemoveResult {
  removed: string[];
  missing: string[];
  via: WriteRoute;
}

function userFile(options: CrudOptions): UserFile {
  const c = resolveStoreOptions({ ...options, watch: false });
  return new UserFile({
    path: c.path,
    format: c.format,
    primaryKey: c.primaryKey,
    ...(c.collection !== undefined ? { collection: c.collection } : {}),
  });
}

/** All documents of the user's file, in file order. E_IO if the file does not exist. */
export async function listDocuments(options: CrudOptions): Promise<UserDoc[]> {
  return [...(await readDocs(options)).values()].map(userFields);
}

/** The documents with these ids, in the order asked; `missing` lists ids that do not exist. */
export async function getDocuments(
  options: CrudOptions,
  ids: readonly string[],
): Promise<{ found: UserDoc[]; missing: string[] }> {
  const docs = await readDocs(options);
  const found: UserDoc[] = [];
  const missing: string[] = [];
  for (const id of ids) {
    const d = docs.get(id);
    if (d) found.push(userFields(d));
    else missing.push(id);
  }
  return { found, missing };
}

/**
 * The documents as the store holds them: the user's file plus acknowledged writes that only the journal holds yet
 * (an owner killed before rewriting the file: docs/STORES.md, "Durability"). Under the short write lock, so that the
 * file and the journal's record of it are read as one state; nothing is written.
 */
async function readDocs(options: CrudOptions): Promise<Map<string, DocState>> {
  const c = resolveStoreOptions({ ...options, watch: false });
  const file = userFile(options);
  if (!options.codec) await refuseEncrypted(file.options.path, file.options.collection);
  const lock = new FileLock(writeLockPath(c.path), 'write');
  await lock.acquire(c.lockTimeoutMs);
  let docs: Map<string, DocState>;
  try {
    const raw = await file.readText();
    if (!raw)
      throw new P2PSyncError('E_IO', `${options.path} does not exist (p2psync put creates it)`, { file: options.path });
    docs = withUnsaved(
      file.parse(raw.text, true).docs,
      await Sidecar.load(sidecarPath(c.path, c.collection), c.primaryKey).catch(() => undefined),
    );
  } finally {
    await lock.release();
  }
  // an encrypted store holds ciphertext in the file and in the journal alike
  const { codec } = options;
  if (codec) for (const [id, d] of docs) docs.set(id, codec.decode(d));
  return docs;
}

/**
 * Parses documents given on the command line or stdin: each argument is one JSON document; stdin is NDJSON, or
 * one JSON array. Validates objects, keys and duplicates with the same errors as a store file.
 */
export function parseDocumentsInput(input: { args: readonly string[]; stdin?: string }, primaryKey = 'id'): DocState[] {
  const values: Array<{ value: unknown; file: string }> = [];
  input.args.forEach((arg, i) => {
    const file = `argument ${i + 1}`;
    try {
      values.push({ value: JSON.parse(arg), file });
    } catch (err) {
      const found = scanJson(arg).error;
      const at = lineColumn(arg, found?.offset ?? 0);
      throw new P2PSyncError(
        'E_PARSE',
        `${file}:${at.line}:${at.column}: invalid JSON: ${found?.message ?? (err as Error).message}`,
        { file, ...at },
      );
    }
  });
  if (input.stdin !== undefined) {
    // Validated (with line numbers) like a store file; only the checks across arguments and stdin remain below.
    const text = input.stdin;
    const format = text.trimStart().startsWith('[') ? 'json' : 'ndjson';
    const parsed = new UserFile({ path: '<stdin>', format, primaryKey }).parse(text, true);
    for (const d of parsed.docs.values()) values.push({ value: d, file: '<stdin>' });
  }
  const seen = new Set<string>();
  return values.map(({ value, file }) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new P2PSyncError('E_NOT_OBJECT', `${file}: a document must be a JSON object`, { file });
    }
    const id = docKey(value as Record<string, unknown>, primaryKey);
    if (id === undefined) {
      throw new P2PSyncError('E_BAD_KEY', `${file}: the primary key "${primaryKey}" must be a non-empty string`, {
        file,
        key: primaryKey,
      });
    }
    // Documents from stdin were checked (with line numbers) and carry `_deleted: false` by now.
    const reserved = file === '<stdin>' ? undefined : reservedField(value as Record<string, unknown>);
    if (reserved !== undefined) throw reservedFieldError(file, id, reserved, { file });
    if (seen.has(id))
      throw new P2PSyncError('E_DUPLICATE_KEY', `${file}: duplicate ${primaryKey} "${id}" in the input`, {
        file,
        key: id,
        field: primaryKey,
      });
    seen.add(id);
    return toDocState(value as Record<string, unknown>, false);
  });
}

/** Inserts or replaces documents (upsert). */
export async function putDocuments(options: CrudOptions, docs: readonly DocState[]): Promise<PutResult> {
  const pk = options.primaryKey ?? 'id';
  const ids = docs.map((d) => docKey(d, pk)!);
  const classify = (current: (id: string) => DocState | undefined): PutResult => {
    const r: PutResult = { created: [], updated: [], unchanged: [], via: 'store' };
    docs.forEach((d, i) => {
      const cur = current(ids[i]!);
      if (!cur || cur._deleted) r.created.push(ids[i]!);
      else if (docEquals(cur, d)) r.unchanged.push(ids[i]!);
      else r.updated.push(ids[i]!);
    });
    return r;
  };
  if (docs.length === 0) return { created: [], updated: [], unchanged: [], via: 'store' };
  return withStore(
    options,
    async (store) => {
      const current = await store.get(ids);
      const result = classify((id) => current.get(id));
      let rows = docs.map((d, i) => ({ document: d, expected: current.get(ids[i]!) ?? null }));
      // Nobody else writes to this store in this process, but stay correct if someone does: retry on conflicts.
      for (let attempt = 0; rows.length > 0; attempt++) {
        const conflicts = await store.bulkWrite(rows, { kind: 'local' });
        if (attempt > 10) throw new P2PSyncError('E_BUSY', 'put kept conflicting with concurrent writes; try again');
        const again = new Map(conflicts.map((c) => [docKey(c, pk)!, c]));
        rows = rows
          .filter((r) => again.has(docKey(r.document, pk)!))
          .map((r) => ({ document: r.document, expected: again.get(docKey(r.document, pk)!)! }));
      }
      return result;
    },
    async (docsInFile, codec) => {
      const result = classify((id) => {
        const d = docsInFile.get(id);
        return d && codec ? codec.decode(d) : d;
      });
      result.via = 'file';
      for (let i = 0; i < docs.length; i++) docsInFile.set(ids[i]!, codec ? codec.encode(docs[i]!) : docs[i]!);
      return { result, changed: result.created.length + result.updated.length > 0 };
    },
  );
}

/** Deletes documents; ids that do not exist are reported in `missing`. */
export async function removeDocuments(options: CrudOptions, ids: readonly string[]): Promise<RemoveResult> {
  const unique = [...new Set(ids)];
  return withStore(
    options,
    async (store) => {
      const current = await store.get(unique);
      const r: RemoveResult = { removed: [], missing: [], via: 'store' };
      const rows = [];
      for (const id of unique) {
        const cur = current.get(id);
        if (!cur || cur._deleted) r.missing.push(id);
        else {
          r.removed.push(id);
          rows.push({ document: { ...cur, _deleted: true }, expected: cur });
        }
      }
      if (rows.length > 0) {
        const conflicts = await store.bulkWrite(rows, { kind: 'local' });
        if (conflicts.length > 0) throw new P2PSyncError('E_BUSY', 'rm conflicted with a concurrent write; try again');
      }
      return r;
    },
    async (docsInFile) => {
      const r: RemoveResult = { removed: [], missing: [], via: 'file' };
      for (const id of unique) (docsInFile.delete(id) ? r.removed : r.missing).push(id);
      return { result: r, changed: r.removed.length > 0 };
    },
  );
}

/**
 * Runs `viaStore` as the store's owner, or, if another process owns the store, `viaFile` on the user file's
 * documents under the write lock (the map is written back if `changed`).
 */
async function withStore<T>(
  options: CrudOptions,
  viaStore: (store: Store) => Promise<T>,
  viaFile: (docs: Map<string, DocState>, codec: DocCodec | undefined) => Promise<{ result: T; changed: boolean }>,
): Promise<T> {
  const { codec, ...fileOptions } = options;
  let store: Store;
  await codec?.beforeOpen();
  try {
    store = await openStore({ ...fileOptions, watch: false, encrypted: codec !== undefined });
  } catch (err) {
    if (err instanceof P2PSyncError && err.code === 'E_LOCKED' && err.details.owner === true)
      return editFile(options, viaFile);
    throw err;
  }
  let result: T;
  try {
    if (codec) store = await codec.wrap(store);
    result = await viaStore(store);
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  await store.close();
  return result;
}

async function editFile<T>(
  options: CrudOptions,
  edit: (docs: Map<string, DocState>, codec: DocCodec | undefined) => Promise<{ result: T; changed: boolean }>,
): Promise<T> {
  const c = resolveStoreOptions({ ...options, watch: false });
  const file = userFile(options);
  const lock = new FileLock(writeLockPath(c.path), 'write');
  if (!options.codec) await refuseEncrypted(c.path, c.collection);
  await lock.acquire(c.lockTimeoutMs);
  try {
    await options.codec?.refresh();
    const raw = await file.readText();
    const content = raw ? file.parse(raw.text, true) : file.parse(file.emptyText(), true);
    const { result, changed } = await edit(content.docs, options.codec);
    if (changed) await file.writeText(file.serialise(content.docs.values(), content.root));
    return result;
  } finally {
    await lock.release();
  }
}
