import type { KeptVersion } from '../core/conflicts.js';
import { userFields } from '../core/doc.js';
import { P2PSyncError } from '../core/errors.js';
import type { Json } from '../core/types.js';
import { getDocuments, putDocuments, removeDocuments, type CrudOptions } from '../store/crud.js';
import { resolveStoreOptions } from '../store/open.js';
import { DEFAULT_KEEP_CONFLICTS, keptCodecFor } from './kept.js';
import { FileKeptVersions, keptPath } from './kept-file.js';

/**
 * The core of `p2psync conflicts ls|show|resolve`. Safe while a `join` runs on the same file: the current document
 * is read from the user's file, a chosen version is written through `put`'s path (as the owner, or as a file edit
 * under the write lock that the running join takes in), and the record is cleared by appending to the
 * kept-versions journal under its own lock.
 */
export type ConflictsOptions = CrudOptions;

export interface ConflictSummary {
  id: string;
  /** Kept versions. */
  versions: number;
  /** Time of the newest one. */
  latest: string;
}

/** A kept version as the command shows it: numbered from 1, oldest first. */
export interface NumberedVersion {
  n: number;
  vid: string;
  time: string;
  peer: string;
  strategy: string;
  side: 'local' | 'remote';
  fields?: string[];
  deleted: boolean;
  /** User fields only. */
  document: Record<string, Json>;
}

export interface ShownConflict {
  id: string;
  /** The document as the user's file holds it now; null when it is deleted or absent. */
  current: Record<string, Json> | null;
  versions: NumberedVersion[];
}

export type ResolveChoice = { use: number } | { keepCurrent: true };

export interface ResolveResult {
  id: string;
  /** The version written (1-based), or undefined with `keepCurrent`. */
  used: number | undefined;
  /** How the version was written: put, or rm for a kept delete. */
  wrote: 'put' | 'rm' | undefined;
  cleared: number;
}

async function openKept(o: ConflictsOptions): Promise<FileKeptVersions> {
  const c = resolveStoreOptions({ ...o, watch: false });
  return FileKeptVersions.open(keptPath(c.path, c.collection), {
    limit: DEFAULT_KEEP_CONFLICTS,
    lockTimeoutMs: c.lockTimeoutMs,
    codec: keptCodecFor(o.codec),
  });
}

/** Documents with kept versions, in id order. */
export async function listConflicts(o: ConflictsOptions): Promise<ConflictSummary[]> {
  const kept = await openKept(o);
  try {
    return [...(await kept.list())].map(([id, vs]) => ({ id, versions: vs.length, latest: vs[vs.length - 1]!.time }));
  } finally {
    await kept.close();
  }
}

/** The current document and the kept versions of `id`; E_NO_CONFLICT if it has none. */
export async function showConflict(o: ConflictsOptions, id: string): Promise<ShownConflict> {
  const kept = await openKept(o);
  try {
    const versions = await versionsOf(kept, id);
    const { found } = await getDocuments(o, [id]);
    return { id, current: found[0] ?? null, versions: versions.map(numbered) };
  } finally {
    await kept.close();
  }
}

/**
 * Writes version `use` (1-based) of `id` as a new local write, which then replicates like any write, and clears
 * every kept version of `id` that existed when it started; `keepCurrent` only clears. E_NO_CONFLICT for an id
 * without kept versions or a version number that does not exist, before anything is written.
 */
export async function resolveConflictRecord(
  o: ConflictsOptions,
  id: string,
  choice: ResolveChoice,
): Promise<ResolveResult> {
  const kept = await openKept(o);
  try {
    const versions = await versionsOf(kept, id);
    let used: number | undefined;
    let wrote: ResolveResult['wrote'];
    if ('use' in choice) {
      const v = versions[choice.use - 1];
      if (!Number.isSafeInteger(choice.use) || v === undefined) {
        throw new P2PSyncError(
          'E_NO_CONFLICT',
          `"${id}" has no kept version ${choice.use}; it has ${versions.length} (1-${versions.length})`,
          { id, version: choice.use },
        );
      }
      used = choice.use;
      if (v.document._deleted) {
        await removeDocuments(o, [id]);
        wrote = 'rm';
      } else {
        await putDocuments(o, [{ ...v.document, _deleted: false }]);
        wrote = 'put';
      }
    }
    await kept.clear(
      id,
      versions.map((v) => v.vid),
    );
    return { id, used, wrote, cleared: versions.length };
  } finally {
    await kept.close();
  }
}

async function versionsOf(kept: FileKeptVersions, id: string): Promise<KeptVersion[]> {
  const versions = (await kept.list()).get(id);
  if (!versions || versions.length === 0)
    throw new P2PSyncError(
      'E_NO_CONFLICT',
      `no kept versions of "${id}" (p2psync conflicts ls lists the documents that have some)`,
      { id },
    );
  return versions;
}

function numbered(v: KeptVersion, i: number): NumberedVersion {
  return {
    n: i + 1,
    vid: v.vid,
    time: v.time,
    peer: v.peer,
    strategy: v.strategy,
    side: v.side,
    ...(v.fields ? { fields: v.fields } : {}),
    deleted: v.document._deleted,
    document: userFields(v.document),
  };
}

/** Which of `ids` have kept versions (for the `conflicts` member of `written` events). */
export async function idsWithKeptVersions(o: ConflictsOptions, ids: readonly string[]): Promise<string[]> {
  const kept = await openKept(o);
  try {
    const all = await kept.list();
    return ids.filter((id) => all.has(id));
  } finally {
    await kept.close();
  }
}
