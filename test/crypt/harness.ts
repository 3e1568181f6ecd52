import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PeerStateStore, Store } from '../../src/core/store.js';
import { StoreEncryption, type EncryptionOptions } from '../../src/crypt/store-encryption.js';
import type { FileStoreOptions } from '../../src/store/open.js';
import type { StoreHarness } from '../store/contract.js';
import { tempDir } from '../store/harness.js';
import { rm } from 'node:fs/promises';

/** Every field the store contract suite writes, so that the whole suite runs on ciphertext. */
export const CONTRACT_FIELDS = ['n', 'v', 'title', 'nested'];

export const keyText = (text: string): EncryptionOptions['key'] => ({ text, name: 'TEST_KEY' });

/** Opens an encrypted file store the way `join` does. */
export async function openEncrypted(
  options: FileStoreOptions,
  encryption: EncryptionOptions,
): Promise<Store & PeerStateStore> {
  const e = await StoreEncryption.prepare(options, encryption);
  if (!e) throw new Error('not encrypted');
  return e.open(options);
}

/** A contract harness over one encrypted file; every open() reopens it with the key only. */
export async function encryptedFileHarness(
  fileName: string,
  options: Partial<FileStoreOptions> = {},
): Promise<StoreHarness & { path: string; dir: string }> {
  const dir = await tempDir();
  const path = join(dir, fileName);
  const opened: Store[] = [];
  let first = true;
  return {
    path,
    dir,
    persistent: true,
    async open(extra = {}) {
      const s = await openEncrypted(
        { path, ...options, ...extra },
        { key: keyText('contract key'), ...(first ? { fields: CONTRACT_FIELDS } : {}) },
      );
      first = false;
      opened.push(s);
      return s;
    },
    async cleanup() {
      for (const s of opened.splice(0)) await s.close().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Every file in a directory (name -> bytes). */
export async function snapshotDir(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const name of (await readdir(dir)).sort()) out.set(name, await readFile(join(dir, name)));
  return out;
}

/** Names of the files in `dir` that contain `needle`. */
export async function filesContaining(dir: string, needle: string): Promise<string[]> {
  const hits: string[] = [];
  for (const [name, bytes] of await snapshotDir(dir)) if (bytes.includes(needle)) hits.push(name);
  return hits;
}
