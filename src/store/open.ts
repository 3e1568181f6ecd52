import { extname } from 'node:path';
import { P2PSyncError } from '../core/errors.js';
import type { EmitEvent } from '../core/events.js';
import type { PeerStateStore, Store } from '../core/store.js';
import { FileStore, type FileStoreConfig, type FileStoreStats } from './file-store.js';
import { statOrUndefined } from './fs-util.js';
import { sidecarPath } from './sidecar.js';
import type { StoreFormat } from './user-file.js';

export type { StoreFormat } from './user-file.js';
export type { FileStoreStats } from './file-store.js';

/** Options of a file-backed store. Only `path` is required. */
export interface FileStoreOptions {
  /** The user's file. Created empty if missing. */
  path: string;
  /** Default from the extension: `.json` is json, `.ndjson` / `.jsonl` are ndjson, anything else is E_BAD_FORMAT. */
  format?: StoreFormat;
  /** The primary key field (default `id`); its values must be non-empty strings. */
  primaryKey?: string;
  /** JSON only: the documents are the array under this key of a top-level object; other members are kept. */
  collection?: string;
  /** This replica's identity, used only when the sidecar is created (later opens keep the saved one). */
  storageToken?: string;
  /** Detect outside edits while open (default true; one-shot commands pass false). */
  watch?: boolean;
  /** Use fs.watch as well as the periodic check (default true); false for file systems where it does not work. */
  fsWatch?: boolean;
  /** Period of the fallback check for outside edits, in ms (default 1000). */
  pollIntervalMs?: number;
  /** The first change notification after a quiet spell is checked at once; later ones within this many ms are checked together at its end (default 10; a file written in place is also given 50 ms since its last modification, unless only whole NDJSON lines were appended). */
  debounceMs?: number;
  /** How long tombstones (deleted documents) are kept, in ms (default 30 days). */
  tombstoneTtlMs?: number;
  /**
   * How long to wait for another process's lock on the store, in ms (default 10000): its write lock, or its
   * ownership while a short command (put, rm, or a store that is still opening) holds it. A long-lived owner (a
   * `join`: a store opened with `watch`) is reported at once (E_LOCKED), and a dead owner's lock is broken.
   */
  lockTimeoutMs?: number;
  /** The sidecar journal is compacted once it exceeds this many bytes and most of its records are superseded (default 1 MiB). */
  compactMinBytes?: number;
  /** `outside-edit` events, and `error` / `warning` events for a broken or missing file during a live session. */
  emit?: EmitEvent;
  /**
   * Set by the encryption layer (`src/crypt`), which checked the key and encrypts documents before they reach this
   * store. Without it, a store that has a keyring (it is encrypted) is refused with E_KEY_REQUIRED.
   */
  encrypted?: boolean;
}

/**
 * A store over the user's file, which also keeps the peer states (in its sidecar). `stats` counts file rewrites,
 * sidecar appends and compactions.
 */
export type OpenedStore = Store &
  PeerStateStore & {
    readonly path: string;
    readonly format: StoreFormat;
    readonly stats: Readonly<FileStoreStats>;
  };

export const DEFAULT_TOMBSTONE_TTL_MS = 30 * 24 * 3_600_000;

/** The format implied by a file name, or E_BAD_FORMAT. */
export function formatFromPath(path: string): StoreFormat {
  const ext = extname(path).toLowerCase();
  if (ext === '.json') return 'json';
  if (ext === '.ndjson' || ext === '.jsonl') return 'ndjson';
  throw new P2PSyncError(
    'E_BAD_FORMAT',
    `cannot tell the format of ${path} from its extension; name it .json, .ndjson or .jsonl, or pass --format json|ndjson`,
    {
      file: path,
    },
  );
}

/** Validates options (precise errors up front) and fills in defaults. */
export function resolveStoreOptions(options: FileStoreOptions): FileStoreConfig {
  if (typeof options.path !== 'string' || options.path === '')
    throw new P2PSyncError('E_BAD_OPTION', 'a store needs a file path');
  if (options.format !== undefined && options.format !== 'json' && options.format !== 'ndjson') {
    throw new P2PSyncError('E_BAD_FORMAT', `unknown format "${String(options.format)}"; use json or ndjson`, {
      format: options.format,
    });
  }
  const format = options.format ?? formatFromPath(options.path);
  const primaryKey = options.primaryKey ?? 'id';
  if (typeof primaryKey !== 'string' || primaryKey === '' || primaryKey.startsWith('_')) {
    throw new P2PSyncError(
      'E_BAD_OPTION',
      `bad primary key field "${String(primaryKey)}": use a non-empty field name that does not start with "_"`,
      { key: primaryKey },
    );
  }
  if (options.collection !== undefined) {
    if (format !== 'json')
      throw new P2PSyncError('E_BAD_OPTION', '--collection only applies to JSON files', {
        collection: options.collection,
      });
    if (typeof options.collection !== 'string' || options.collection === '')
      throw new P2PSyncError('E_BAD_OPTION', '--collection needs a non-empty key name');
  }
  const positive = (name: string, v: number | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      throw new P2PSyncError('E_BAD_OPTION', `${name} must be a number >= 0, got ${String(v)}`);
    return v;
  };
  return {
    path: options.path,
    format,
    primaryKey,
    collection: options.collection,
    storageToken: options.storageToken,
    watch: options.watch ?? true,
    fsWatch: options.fsWatch ?? true,
    pollIntervalMs: Math.max(10, positive('pollIntervalMs', options.pollIntervalMs, 1_000)),
    debounceMs: positive('debounceMs', options.debounceMs, 10),
    tombstoneTtlMs: positive('tombstoneTtlMs', options.tombstoneTtlMs, DEFAULT_TOMBSTONE_TTL_MS),
    lockTimeoutMs: positive('lockTimeoutMs', options.lockTimeoutMs, 10_000),
    compactMinBytes: positive('compactMinBytes', options.compactMinBytes, 1 << 20),
    emit: options.emit,
  };
}

/**
 * Opens the user's JSON or NDJSON file as a Store: takes ownership of its sidecar (E_LOCKED if another process
 * has it), validates the file (E_PARSE, E_NOT_OBJECT, E_BAD_KEY, E_DUPLICATE_KEY, E_BAD_COLLECTION; the file is
 * left untouched), ingests edits made while p2psync was not running, and starts watching if `watch`.
 */
export async function openStore(options: FileStoreOptions): Promise<OpenedStore> {
  const config = resolveStoreOptions(options);
  if (!options.encrypted) await refuseEncrypted(config.path, config.collection);
  return FileStore.open(config);
}

/** The keyring of an encrypted store (docs/STORES.md, "Encryption at rest"): `<sidecar>.keys`. */
export function keyringPath(userPath: string, collection?: string): string {
  return sidecarPath(userPath, collection) + '.keys';
}

/** E_KEY_REQUIRED if the store is encrypted (it has a keyring): it must not be read or written without its key. */
export async function refuseEncrypted(userPath: string, collection?: string): Promise<void> {
  const keyring = keyringPath(userPath, collection);
  if (await statOrUndefined(keyring)) {
    throw new P2PSyncError(
      'E_KEY_REQUIRED',
      `${userPath} is encrypted (keyring ${keyring}): give its key with --key-file or P2PSYNC_ENCRYPTION_KEY`,
      { file: userPath },
    );
  }
}
