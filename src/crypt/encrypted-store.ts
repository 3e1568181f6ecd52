import { map, share, Subject, type Observable, type Subscription } from 'rxjs';
import { docEquals, docKey, normaliseDocument } from '../core/doc.js';
import { isNormalised } from '../store/indexed-store.js';
import { P2PSyncError, toP2PSyncError } from '../core/errors.js';
import { skipChanges, type PeerStateStore, type Store } from '../core/store.js';
import type {
  AssumedChanges,
  CasWrite,
  ChangeBatch,
  Checkpoint,
  DocState,
  PeerState,
  PeerStateUpdate,
  StoreChange,
  WriteOrigin,
} from '../core/types.js';
import type { DocCipher } from './doc-cipher.js';

/** What a document is in this layer: its stored (encrypted) object and its plaintext. */
interface Version {
  stored: DocState;
  plain: DocState;
}

/**
 * A Store whose chosen fields are encrypted before they reach the inner store (so the user's file, the sidecar's
 * document copies, tombstones, peer states and journals only ever hold ciphertext) and decrypted on the way out.
 * Replication sees plaintext only.
 *
 * Random nonces make two encryptions of one value unequal, so the store contract's rules run here on plaintext:
 * compare-and-set compares decrypted states and then writes with the inner store's current ciphertext as
 * `expected`, so a change that lands in between (an outside edit) is an ordinary CAS conflict; a document equal to
 * the current one is not rewritten.
 *
 * The latest version of each document is cached by id (stored object and plaintext): a document is decrypted once,
 * object identity stays stable for replication's "already known?" checks, and an assumed peer state equal to the
 * document is handed to the inner store as the document's own ciphertext (which its journal writes as a marker).
 * A Map by id rather than WeakMaps keyed by objects: with 100k documents, WeakMap bookkeeping cost more garbage
 * collection time than the encryption itself.
 *
 * Plaintext found in an encrypted field (someone edited the file) reads as itself and is encrypted straight away.
 */
export class EncryptedStore implements Store, PeerStateStore {
  readonly changes$: Observable<StoreChange>;
  private readonly errors = new Subject<P2PSyncError>();
  /**
   * A value that does not decrypt arrived by an outside edit (the document is not passed on), or re-encrypting
   * plaintext found in an encrypted field failed. Completes when the store closes.
   */
  readonly error$: Observable<P2PSyncError> = this.errors.asObservable();
  /** The latest version seen of each document, by id. */
  private readonly versions = new Map<string, Version>();
  private readonly subscription: Subscription;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly inner: Store & PeerStateStore,
    private readonly docs: DocCipher,
  ) {
    this.changes$ = inner.changes$.pipe(
      map((c) => ({ ...c, documents: this.plainList(c.documents) })),
      share(),
    );
    // Outside edits may write plaintext into an encrypted field: encrypt it right away.
    this.subscription = inner.changes$.subscribe((c) => {
      if (c.origin.kind !== 'outside') return;
      const stale = c.documents.filter((d) => this.docs.isStale(d));
      if (stale.length > 0) void this.reencrypt(stale).catch((err: unknown) => this.errors.next(toP2PSyncError(err)));
    });
  }

  get primaryKey(): string {
    return this.inner.primaryKey;
  }

  get storageToken(): string {
    return this.inner.storageToken;
  }

  async get(ids: readonly string[]): Promise<Map<string, DocState>> {
    const got = await this.inner.get(ids);
    const out = new Map<string, DocState>();
    for (const [id, d] of got) out.set(id, this.plain(d));
    return out;
  }

  async all(): Promise<DocState[]> {
    return (await this.inner.all()).map((d) => this.plain(d));
  }

  /** Counted without decrypting anything. */
  count(): Promise<number> {
    return this.inner.count();
  }

  async changesSince(checkpoint: Checkpoint | null, limit: number): Promise<ChangeBatch> {
    const page = await this.inner.changesSince(checkpoint, limit);
    return { checkpoint: page.checkpoint, documents: page.documents.map((d) => this.plain(d)) };
  }

  /** Skipping reads nothing, so it needs no key: the inner store's checkpoints are this store's. */
  skipChanges(
    checkpoint: Checkpoint | null,
    count: number,
  ): Promise<{ checkpoint: Checkpoint | null; skipped: number }> {
    return skipChanges(this.inner, checkpoint, count);
  }

  bulkWrite(rows: readonly CasWrite[], origin: WriteOrigin): Promise<DocState[]> {
    return this.exclusive(() => this.write(rows, origin, false));
  }

  async getPeerState(key: string): Promise<PeerState | undefined> {
    const s = await this.inner.getPeerState(key);
    if (!s) return undefined;
    const assumed = new Map<string, DocState>();
    for (const [id, d] of s.assumed) assumed.set(id, this.plain(d, false));
    return { down: s.down, up: s.up, assumed };
  }

  setPeerState(key: string, update: PeerStateUpdate): Promise<void> {
    // Read now: `AssumedChanges` are read during the call.
    const given = update.assumed;
    const out: PeerStateUpdate = {};
    if (update.down !== undefined) out.down = update.down;
    if (update.up !== undefined) out.up = update.up;
    if (given !== undefined) {
      const pairs: Array<[string, DocState | null]> = [];
      if (isAssumedChanges(given)) {
        for (const id of given.ids) {
          const s = given.states.get(id);
          pairs.push([id, s === undefined ? null : this.storedFor(s)]);
        }
      } else {
        for (const [id, s] of given) pairs.push([id, s === null ? null : this.storedFor(s)]);
      }
      out.assumed = pairs;
    }
    return this.inner.setPeerState(key, out);
  }

  async peerStateKeys(): Promise<string[]> {
    if (!this.inner.peerStateKeys) throw new P2PSyncError('E_INTERNAL', 'the inner store cannot list its peer states');
    return this.inner.peerStateKeys();
  }

  durable(): Promise<void> {
    return this.inner.durable();
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.subscription.unsubscribe();
    try {
      await this.tail;
      await this.inner.close();
    } finally {
      this.errors.complete();
    }
  }

  /**
   * Decrypts every document and peer state, and rewrites those that are stale (plaintext in an encrypted field,
   * or a value under a data key that is no longer current). Returns how many documents and peer states it
   * rewrote. Throws E_DECRYPT for the first value that does not decrypt.
   */
  async reencryptAll(pageSize = 1000): Promise<{ documents: number; peerStates: number }> {
    let documents = 0;
    let cp: Checkpoint | null = null;
    for (;;) {
      const page = await this.inner.changesSince(cp, pageSize);
      if (page.documents.length === 0) break;
      const stale = page.documents.filter((d) => (this.plain(d), this.docs.isStale(d)));
      if (stale.length > 0) documents += await this.reencrypt(stale);
      cp = page.checkpoint;
    }
    let peerStates = 0;
    for (const key of await this.peerStateKeys()) {
      const s = await this.inner.getPeerState(key);
      const stale: Array<[string, DocState]> = [];
      for (const [id, d] of s?.assumed ?? [])
        if (this.docs.isStale(d)) stale.push([id, this.docs.encrypt(this.plain(d, false))]);
      if (stale.length > 0) {
        await this.inner.setPeerState(key, { assumed: stale });
        peerStates += stale.length;
      }
    }
    return { documents, peerStates };
  }

  /** Rewrites stale stored documents with their own plaintext; a document changed meanwhile is left alone. */
  private async reencrypt(stale: readonly DocState[]): Promise<number> {
    const rows = stale.map((d) => ({ document: this.plain(d), expected: this.plain(d) }));
    const conflicts = await this.exclusive(() => this.write(rows, { kind: 'local' }, true));
    return rows.length - conflicts.length;
  }

  private async write(rows: readonly CasWrite[], origin: WriteOrigin, rewriteStale: boolean): Promise<DocState[]> {
    if (this.closed) throw new P2PSyncError('E_INTERNAL', 'the store is closed');
    const pk = this.primaryKey;
    // Validate every row before anything is written (atomic per batch). Encrypting copies a document anyway, so a
    // normalised one from replication (origin peer, see IndexedStore.normalise) is not copied a second time here.
    const handedOver = origin.kind === 'peer';
    const docs = rows.map((r) =>
      handedOver && isNormalised(r.document, pk) ? r.document : normaliseDocument(r.document, pk),
    );
    const ids = docs.map((d) => docKey(d, pk)!);
    const current = await this.inner.get([...new Set(ids)]);
    const batch = new Map<string, Version | null>();
    const results: Array<DocState | undefined> = [];
    const innerRows: CasWrite[] = [];
    const attempted = new Set<string>();
    docs.forEach((doc, i) => {
      const id = ids[i]!;
      let cur = batch.get(id);
      if (cur === undefined) {
        const stored = current.get(id);
        cur = stored ? { stored, plain: this.plain(stored) } : null;
      }
      if (cur !== null && !docEquals(cur.plain, rows[i]!.expected)) {
        results.push(cur.plain);
        return;
      }
      results.push(undefined);
      if (cur !== null && docEquals(cur.plain, doc) && !(rewriteStale && this.docs.isStale(cur.stored))) return;
      const version = { stored: this.docs.encrypt(doc), plain: doc };
      this.versions.set(id, version);
      innerRows.push({ document: version.stored, expected: cur?.stored ?? null });
      attempted.add(id);
      batch.set(id, version);
    });
    if (innerRows.length > 0) {
      // Only the first row of an id can conflict (later ones expect what it wrote): the inner store's conflicts say
      // which ids changed under us, and every row of those ids reports the state that is really there.
      const conflicts = await this.inner.bulkWrite(innerRows, origin);
      const now = new Map(conflicts.map((c) => [docKey(c, pk)!, this.plain(c)]));
      ids.forEach((id, i) => {
        const real = now.get(id);
        if (real !== undefined && attempted.has(id)) results[i] = real;
      });
    }
    return results.filter((r): r is DocState => r !== undefined);
  }

  /** The plaintext of a stored document; `remember`: cache it as the document's latest version (not for peer states). */
  private plain(stored: DocState, remember = true): DocState {
    const id = stored[this.primaryKey] as string;
    const v = this.versions.get(id);
    if (v !== undefined) {
      if (v.stored === stored) return v.plain;
      // A store that holds documents as text hands out a fresh object per read: the same version (random nonces
      // make every version's ciphertext unique) is recognised by comparing, which costs far less than decrypting.
      if (remember && docEquals(v.stored, stored)) {
        v.stored = stored;
        return v.plain;
      }
    }
    const plain = this.docs.decrypt(stored);
    if (remember) this.versions.set(id, { stored, plain });
    return plain;
  }

  private plainList(stored: readonly DocState[]): DocState[] {
    const out: DocState[] = [];
    for (const d of stored) {
      try {
        out.push(this.plain(d));
      } catch (err) {
        this.errors.next(toP2PSyncError(err));
      }
    }
    return out;
  }

  /** The stored form of a plaintext state: the document's own ciphertext when it is the latest version, else new. */
  private storedFor(plain: DocState): DocState {
    const v = this.versions.get(plain[this.primaryKey] as string);
    return v?.plain === plain ? v.stored : this.docs.encrypt(plain);
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }
}

function isAssumedChanges(a: PeerStateUpdate['assumed']): a is AssumedChanges {
  return typeof a === 'object' && a !== null && 'ids' in a && 'states' in a;
}
