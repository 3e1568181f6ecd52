import type { ConflictKeeper, KeptVersion } from '../core/conflicts.js';
import { P2PSyncError } from '../core/errors.js';
import type { DocState } from '../core/types.js';

export type { ConflictKeeper, KeptVersion } from '../core/conflicts.js';

/** `--keep-conflicts` default: versions kept per document before the oldest are dropped. */
export const DEFAULT_KEEP_CONFLICTS = 10;

/**
 * Where kept versions live: the file journal beside the sidecar (`FileKeptVersions`) or memory. Replication only
 * sees `keep`; the `conflicts` command lists and clears.
 */
export interface KeptVersionStore extends ConflictKeeper {
  /** Every document's kept versions, oldest first, documents in id order. */
  list(): Promise<Map<string, KeptVersion[]>>;
  /** Removes these versions of `id` (by `vid`); unknown ones are ignored. */
  clear(id: string, vids: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * Every kept version goes through these two functions on its way to and from the disk, and nowhere else: the one
 * place where encryption at rest plugs in.
 */
export interface KeptCodec {
  /** Any JSON value (an encrypting codec would return ciphertext); stored as the record's `v`. */
  encode(version: KeptVersion): unknown;
  decode(stored: unknown): KeptVersion;
}

export const plainCodec: KeptCodec = {
  encode: (v) => v,
  decode: (stored) => checkKept(stored),
};

/**
 * The kept-version codec of a store whose documents pass through `docs` on their way to disk (an encrypted store,
 * src/crypt): kept versions are documents too, so their encrypted fields are stored as ciphertext like every other
 * copy on disk (docs/STORES.md, "Encryption at rest").
 */
export function keptCodecFor(
  docs: { encode(d: DocState): DocState; decode(d: DocState): DocState } | undefined,
): KeptCodec {
  if (!docs) return plainCodec;
  return {
    encode: (v) => ({ ...v, document: docs.encode(v.document) }),
    decode: (stored) => {
      const v = plainCodec.decode(stored);
      return { ...v, document: docs.decode(v.document) };
    },
  };
}

/** Validates a decoded kept version (a damaged journal must not hand garbage to the command). */
export function checkKept(value: unknown): KeptVersion {
  const v = value as Partial<KeptVersion> | null;
  const ok =
    typeof v === 'object' &&
    v !== null &&
    typeof v.vid === 'string' &&
    typeof v.id === 'string' &&
    typeof v.time === 'string' &&
    typeof v.peer === 'string' &&
    typeof v.strategy === 'string' &&
    (v.side === 'local' || v.side === 'remote') &&
    typeof v.document === 'object' &&
    v.document !== null &&
    !Array.isArray(v.document);
  if (!ok) throw new P2PSyncError('E_SIDECAR', 'not a kept version record');
  (v.document as DocState)._deleted = (v.document as DocState)._deleted === true;
  return v as KeptVersion;
}

/** Checks a `--keep-conflicts` value: a whole number from 0 (keep nothing) to 1000. */
export function checkKeepLimit(n: number): number {
  if (!Number.isSafeInteger(n) || n < 0 || n > 1000) {
    throw new P2PSyncError('E_BAD_OPTION', `--keep-conflicts must be a whole number from 0 to 1000, got ${String(n)}`, {
      option: 'keep-conflicts',
    });
  }
  return n;
}

/**
 * The per-document bookkeeping both stores share: versions in arrival order, at most `limit` per document. `add`
 * returns the vids it pushed out (oldest first).
 */
export class KeptIndex<T extends { vid: string }> {
  readonly byId = new Map<string, T[]>();

  constructor(private readonly limit: number) {}

  add(id: string, item: T): string[] {
    let list = this.byId.get(id);
    if (!list) this.byId.set(id, (list = []));
    list.push(item);
    if (list.length <= this.limit) return [];
    return list.splice(0, list.length - this.limit).map((x) => x.vid);
  }

  remove(id: string, vids: readonly string[]): void {
    const list = this.byId.get(id);
    if (!list) return;
    const drop = new Set(vids);
    const rest = list.filter((x) => !drop.has(x.vid));
    if (rest.length > 0) this.byId.set(id, rest);
    else this.byId.delete(id);
  }

  get size(): number {
    let n = 0;
    for (const list of this.byId.values()) n += list.length;
    return n;
  }
}

/** Kept versions in memory (tests, embedding): survive as long as the object, like a MemoryStore's content. */
export class MemoryKeptVersions implements KeptVersionStore {
  private readonly index: KeptIndex<KeptVersion>;

  constructor(limit = DEFAULT_KEEP_CONFLICTS) {
    this.index = new KeptIndex(checkKeepLimit(limit));
  }

  async keep(versions: readonly KeptVersion[]): Promise<void> {
    for (const v of versions) this.index.add(v.id, v);
  }

  async list(): Promise<Map<string, KeptVersion[]>> {
    return sortedById(this.index.byId);
  }

  async clear(id: string, vids: readonly string[]): Promise<void> {
    this.index.remove(id, vids);
  }

  async close(): Promise<void> {}
}

export function sortedById<T>(map: ReadonlyMap<string, T[]>): Map<string, T[]> {
  const ids = [...map.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return new Map(ids.map((id) => [id, [...map.get(id)!]]));
}
