import { setTimeout as delay } from 'node:timers/promises';
import { P2PSyncError } from '../core/errors.js';
import { FileLock } from '../store/lock.js';
import { openStore, resolveStoreOptions, type FileStoreOptions } from '../store/open.js';
import { writeLockPath } from '../store/sidecar.js';
import { UserFile } from '../store/user-file.js';
import { DocCipher } from './doc-cipher.js';
import { EncryptedStore } from './encrypted-store.js';
import { readKeyring, writeKeyring } from './keyring.js';
import { readSecret, type KeySource } from './secret.js';
import { StoreEncryption } from './store-encryption.js';
import { newDataKey } from './value.js';

export interface RekeyOptions extends Pick<
  FileStoreOptions,
  'path' | 'format' | 'primaryKey' | 'collection' | 'lockTimeoutMs'
> {
  /** The current key (missing: E_KEY_REQUIRED). */
  oldKey: KeySource | undefined;
  newKey: KeySource;
}

export interface RekeyResult {
  /** Documents (tombstones included) and assumed peer states re-encrypted. */
  documents: number;
  peerStates: number;
}

/** Passes over the store before giving up when documents keep arriving in the old data key. */
const MAX_PASSES = 50;
/** Between passes: the watcher's debounce plus the settle time of a file written in place (docs/STORES.md). */
const PASS_DELAY_MS = 100;

/**
 * Re-encrypts every value of a store under a new data key, opened by a new user key. Atomic under a crash in the
 * sense that matters: the store always opens with the old key or the new one.
 *
 * 1. The keyring is replaced (atomically) by one whose data keys are {old, new}, each user key opening both; new
 *    values use the new data key. A crash from here on leaves a store that either key opens.
 * 2. Every document, tombstone and peer state is rewritten under the new data key, through the store (so file and
 *    sidecar stay consistent), and flushed.
 * 3. Under the write lock (so no `put` lands meanwhile), the user's file is checked to hold no value under an old
 *    data key (a `put` that read the keyring before step 1 may have written one: then step 2 runs again once the
 *    store took the edit in); then the keyring is replaced by one holding the new data key under the new user key
 *    only.
 *
 * Refused with E_LOCKED while another process (a `join`) owns the store. Everything is validated (both key files,
 * the old key, every value of the file) before the first write.
 */
export async function rekey(o: RekeyOptions): Promise<RekeyResult> {
  const location = { path: o.path, format: o.format, primaryKey: o.primaryKey, collection: o.collection };
  const c = resolveStoreOptions({
    ...location,
    watch: false,
    ...(o.lockTimeoutMs !== undefined ? { lockTimeoutMs: o.lockTimeoutMs } : {}),
  });
  const encryption = await StoreEncryption.prepare(location, { key: o.oldKey });
  if (!encryption?.unlocked)
    throw new P2PSyncError('E_BAD_OPTION', `${c.path} is not encrypted: nothing to rekey`, { file: c.path });
  const oldSecret = await readSecret(o.oldKey!);
  const newSecret = await readSecret(o.newKey);
  if (oldSecret.equals(newSecret)) throw new P2PSyncError('E_BAD_OPTION', 'the new key is the same as the old key');
  await encryption.beforeOpen();
  const old = encryption.unlocked;
  const path = encryption.keyringPath;
  const lock = new FileLock(writeLockPath(c.path), 'rekey');
  const newKey = newDataKey();
  const userFile = new UserFile({
    path: c.path,
    format: c.format,
    primaryKey: c.primaryKey,
    ...(c.collection !== undefined ? { collection: c.collection } : {}),
  });
  const result: RekeyResult = { documents: 0, peerStates: 0 };

  // Takes ownership for the whole run: E_LOCKED while a join runs, and no `put` can take it in between (it edits
  // the file instead, under the write lock, which the watcher takes in as an outside edit).
  const inner = await openStore({ ...location, watch: true, encrypted: true });
  let store: EncryptedStore | undefined;
  try {
    const both = await underLock(lock, c.lockTimeoutMs, async () => {
      const now = await readKeyring(path);
      if (now?.text !== old.text)
        throw new P2PSyncError('E_LOCKED', `the keyring ${path} changed while rekey was starting; run it again`, {
          file: path,
        });
      return writeKeyring(path, old.fields, [...old.dataKeys, newKey], newKey, [oldSecret, newSecret]);
    });
    const docs = new DocCipher(c.primaryKey, old.fields, both.cipher);
    store = new EncryptedStore(inner, docs);
    for (let pass = 0; ; pass++) {
      const n = await store.reencryptAll();
      result.documents += n.documents;
      result.peerStates += n.peerStates;
      await store.flush();
      const done = await underLock(lock, c.lockTimeoutMs, async () => {
        const raw = await userFile.readText();
        for (const d of raw ? userFile.parse(raw.text, true).docs.values() : []) if (docs.isStale(d)) return false;
        await writeKeyring(path, old.fields, [newKey], newKey, [newSecret]);
        return true;
      });
      if (done) return result;
      // A `put` that read the keyring before step 2 wrote under the old data key: let the watcher take it in.
      if (pass >= MAX_PASSES)
        throw new P2PSyncError(
          'E_LOCKED',
          `${c.path} kept changing during rekey; either key opens it; run rekey again`,
          { file: c.path },
        );
      await delay(PASS_DELAY_MS);
    }
  } finally {
    await (store ?? inner).close();
  }
}

async function underLock<T>(lock: FileLock, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  await lock.acquire(timeoutMs);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
