import { P2PSyncError } from '../core/errors.js';
import type { PeerStateStore, Store } from '../core/store.js';
import type { DocState } from '../core/types.js';
import type { DocCodec } from '../store/crud.js';
import { keyringPath, openStore, resolveStoreOptions, type FileStoreOptions } from '../store/open.js';
import { UserFile } from '../store/user-file.js';
import { DocCipher, validateFields } from './doc-cipher.js';
import { EncryptedStore } from './encrypted-store.js';
import { createKeyring, readKeyring, unlockKeyring, type Keyring } from './keyring.js';
import { readSecret, type KeySource } from './secret.js';

/** Encryption at rest for one store: the options `join` and the CRUD commands take. */
export interface EncryptionOptions {
  /** Top-level fields to encrypt. Named once, when the store is first encrypted; later opens need only the key. */
  fields?: readonly string[] | undefined;
  /** The user's key: `--key-file`, or the `P2PSYNC_ENCRYPTION_KEY` environment variable. */
  key?: KeySource | undefined;
}

type StoreLocation = Pick<FileStoreOptions, 'path' | 'format' | 'primaryKey' | 'collection'>;

/**
 * The encryption of one store with its key checked: everything is validated (key file, key, field list) before the
 * first side effect. `open` wraps the file store in an EncryptedStore; `encode` / `decode` serve the CRUD commands
 * that edit the file directly while a `join` owns it.
 */
export class StoreEncryption implements DocCodec {
  /** Undefined until a new store's keyring is created (when the store is first opened). */
  private docs: DocCipher | undefined;

  private constructor(
    private readonly location: StoreLocation & { primaryKey: string },
    private readonly keyringFile: string,
    private readonly secret: Buffer,
    readonly fields: readonly string[],
    private keyring: Keyring | undefined,
  ) {
    if (keyring) this.docs = new DocCipher(location.primaryKey, fields, keyring.cipher);
  }

  /**
   * Undefined for a store that is not encrypted and is not asked to be. E_KEY_REQUIRED (encrypted, no key),
   * E_KEY_FILE, E_WRONG_KEY, E_KEYRING, or E_BAD_OPTION (fields that differ from the recorded ones, a key for a
   * store that is not encrypted, a bad field list).
   */
  static async prepare(location: StoreLocation, options: EncryptionOptions): Promise<StoreEncryption | undefined> {
    const c = resolveStoreOptions({ ...location, watch: false });
    const where = {
      path: c.path,
      format: c.format,
      primaryKey: c.primaryKey,
      ...(c.collection !== undefined ? { collection: c.collection } : {}),
    };
    const path = keyringPath(c.path, c.collection);
    const read = await readKeyring(path);
    const fields = options.fields && validateFields(options.fields, c.primaryKey);
    if (!read) {
      if (!fields) {
        if (options.key)
          throw new P2PSyncError(
            'E_BAD_OPTION',
            `${c.path} is not encrypted; to encrypt a new store, name the fields with --encrypt-fields`,
            { file: c.path },
          );
        return undefined;
      }
      if (!options.key)
        throw new P2PSyncError(
          'E_KEY_REQUIRED',
          '--encrypt-fields needs a key: --key-file FILE or P2PSYNC_ENCRYPTION_KEY',
        );
      return new StoreEncryption(where, path, await readSecret(options.key), fields, undefined);
    }
    if (!options.key)
      throw new P2PSyncError(
        'E_KEY_REQUIRED',
        `${c.path} is encrypted (keyring ${path}): give its key with --key-file or P2PSYNC_ENCRYPTION_KEY`,
        { file: c.path },
      );
    const secret = await readSecret(options.key);
    const keyring = await unlockKeyring(path, read, secret);
    if (fields && (fields.length !== keyring.fields.length || fields.some((f, i) => f !== keyring.fields[i]))) {
      throw new P2PSyncError(
        'E_BAD_OPTION',
        `${c.path} encrypts the fields ${keyring.fields.join(',')}; they were fixed when it was first encrypted (leave out --encrypt-fields)`,
        {
          file: c.path,
          fields: keyring.fields,
        },
      );
    }
    return new StoreEncryption(where, path, secret, keyring.fields, keyring);
  }

  /** The unlocked keyring (undefined for a store not encrypted yet). */
  get unlocked(): Keyring | undefined {
    return this.keyring;
  }

  get keyringPath(): string {
    return this.keyringFile;
  }

  /** True while a rekey is unfinished (the keyring holds more than one data key). */
  get rekeyPending(): boolean {
    return (this.keyring?.dataKeys.length ?? 0) > 1;
  }

  /**
   * Opens the file store and wraps it. Before the file store is opened (which may write: it takes in edits made while
   * p2psync was not running), every encrypted value of the user's file is decrypted, so a tampered value is refused
   * with E_DECRYPT and nothing is written. `options.emit` also gets an `error` event for a value that does not
   * decrypt arriving by an outside edit, and a `warning` if a rekey was interrupted.
   */
  async open(options: FileStoreOptions): Promise<EncryptedStore> {
    const emit = options.emit;
    await this.beforeOpen();
    const inner = await openStore({ ...options, encrypted: true });
    try {
      const file = this.location.path;
      const store = await this.wrap(inner, (err) =>
        emit?.({
          event: 'error',
          code: err.code,
          message: `${file}: ${err.message}`,
          details: { ...err.details, file },
        }),
      );
      if (this.rekeyPending) {
        emit?.({
          event: 'warning',
          code: 'W_REKEY_UNFINISHED',
          message: `a rekey of ${file} was interrupted; either key opens it until p2psync rekey runs again`,
          details: { file },
        });
      }
      return store;
    } catch (err) {
      await inner.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Wraps an open file store (DocCodec: the CRUD commands open it themselves). Creates the keyring of a new store
   * (refused if the store holds documents already). Then every document and peer state is decrypted, and values that
   * are stale (plaintext written into an encrypted field, or under an old data key) are encrypted anew.
   */
  async wrap(inner: Store & PeerStateStore, onError?: (err: P2PSyncError) => void): Promise<EncryptedStore> {
    if (!this.keyring) {
      if ((await inner.changesSince(null, 1)).documents.length > 0) throw this.notEmpty();
      this.keyring = await createKeyring(this.keyringFile, this.fields, this.secret);
      this.docs = new DocCipher(this.location.primaryKey, this.fields, this.keyring.cipher);
    } else await this.refresh();
    const store = new EncryptedStore(inner, this.docs!);
    if (onError) store.error$.subscribe(onError);
    try {
      await store.reencryptAll();
    } catch (err) {
      throw this.named(err);
    }
    return store;
  }

  decode(doc: DocState): DocState {
    try {
      return this.cipher().decrypt(doc);
    } catch (err) {
      throw this.named(err);
    }
  }

  encode(doc: DocState): DocState {
    return this.cipher().encrypt(doc);
  }

  /**
   * Re-reads the keyring (the CRUD commands do so under the write lock, before they edit the file): after a rekey
   * elsewhere, new values must use the new data key. E_WRONG_KEY if our key no longer opens it.
   */
  async refresh(): Promise<void> {
    const read = await readKeyring(this.keyringFile);
    if (!read) {
      if (this.keyring)
        throw new P2PSyncError('E_KEYRING', `the keyring ${this.keyringFile} disappeared`, { file: this.keyringFile });
      return;
    }
    if (read.text === this.keyring?.text) return;
    this.keyring = await unlockKeyring(this.keyringFile, read, this.secret);
    if (this.docs) this.docs.cipher = this.keyring.cipher;
    else this.docs = new DocCipher(this.location.primaryKey, this.fields, this.keyring.cipher);
  }

  /**
   * Decrypts every encrypted value of the user's file without writing anything (E_DECRYPT); for a store to be
   * encrypted now, checks that the file holds no documents yet.
   */
  async beforeOpen(): Promise<void> {
    const { path, format, primaryKey, collection } = this.location;
    const file = new UserFile({
      path,
      format: format!,
      primaryKey,
      ...(collection !== undefined ? { collection } : {}),
    });
    const raw = await file.readText();
    if (!raw) return;
    const docs = file.parse(raw.text, true).docs;
    if (!this.keyring) {
      if (docs.size > 0) throw this.notEmpty();
      return;
    }
    for (const d of docs.values()) this.decode(d);
  }

  private cipher(): DocCipher {
    if (!this.docs)
      throw new P2PSyncError(
        'E_KEYRING',
        `${this.location.path} has no keyring yet (another process owns it without encryption?)`,
        { file: this.keyringFile },
      );
    return this.docs;
  }

  private named(err: unknown): unknown {
    if (err instanceof P2PSyncError && err.code === 'E_DECRYPT') {
      return new P2PSyncError(err.code, `${this.location.path}: ${err.message}`, {
        ...err.details,
        file: this.location.path,
      });
    }
    return err;
  }

  private notEmpty(): P2PSyncError {
    const p = this.location.path;
    return new P2PSyncError(
      'E_BAD_OPTION',
      `${p} already holds documents in plaintext (in the file or in its sidecar), so --encrypt-fields cannot protect them; encrypt into a new store: p2psync ls --store ${p} | p2psync put --store NEW --encrypt-fields ...`,
      { file: p },
    );
  }
}
