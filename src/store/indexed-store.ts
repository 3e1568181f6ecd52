import { Subject, type Observable } from 'rxjs';
import { docEquals, docKey, compareIds, normaliseDocument } from '../core/doc.js';
import { P2PSyncError } from '../core/errors.js';
import type { PeerStateStore, Store } from '../core/store.js';
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
import { EntryStates } from './entry-states.js';
import { DocIndex, isCheckpoint, type IndexEntry } from './doc-index.js';

/** A doc state as `normalise` would return it: a plain object with its key, a boolean `_deleted`, no internals. */
export function isNormalised(document: unknown, primaryKey: string): document is DocState {
  if (typeof document !== 'object' || document === null || Array.isArray(document)) return false;
  const d = document as Record<string, unknown>;
  return (
    typeof d._deleted === 'boolean' &&
    docKey(d, primaryKey) !== undefined &&
    !Object.hasOwn(d, '_meta') &&
    !Object.hasOwn(d, '_rev') &&
    !Object.hasOwn(d, '_attachments')
  );
}

/** What an update changed in a peer state: the down / up checkpoints, and the assumed states of these ids. */
export interface PeerStateChange {
  down: boolean;
  up: boolean;
  ids: readonly string[];
}

/**
 * Store logic shared by every implementation: the index, compare-and-set, the change stream and peer states.
 * Subclasses add persistence through the protected hooks; the memory store adds none.
 *
 * All mutations run one at a time (`exclusive`), so a batch is atomic with respect to readers and other writers.
 */
export abstract class IndexedStore implements Store, PeerStateStore {
  protected readonly index = new DocIndex();
  /** Entries keep their texts only once committed (`IndexEntry.compact`): a store that holds many documents. */
  protected readonly compactsEntries: boolean = false;
  protected readonly peerStates = new Map<string, PeerState>();
  private readonly subject = new Subject<StoreChange>();
  private tail: Promise<unknown> = Promise.resolve();
  protected closed = false;
  private closing: Promise<void> | undefined;

  abstract readonly storageToken: string;

  constructor(readonly primaryKey: string) {}

  get changes$(): Observable<StoreChange> {
    return this.subject.asObservable();
  }

  async get(ids: readonly string[]): Promise<Map<string, DocState>> {
    await this.beforeRead();
    const out = new Map<string, DocState>();
    for (const id of ids) {
      const e = this.index.get(id);
      if (e) out.set(id, e.doc);
    }
    return out;
  }

  async all(): Promise<DocState[]> {
    await this.beforeRead();
    const live: IndexEntry[] = [];
    for (const e of this.index.entries()) if (!e.deleted) live.push(e);
    return live.sort((a, b) => compareIds(a.id, b.id)).map((e) => e.doc);
  }

  async count(): Promise<number> {
    await this.beforeRead();
    let n = 0;
    for (const e of this.index.entries()) if (!e.deleted) n++;
    return n;
  }

  async changesSince(checkpoint: Checkpoint | null, limit: number): Promise<ChangeBatch> {
    await this.beforeRead();
    if (checkpoint !== null && !isCheckpoint(checkpoint)) return { checkpoint, documents: [] };
    const { checkpoint: last, documents } = this.index.page(checkpoint, Math.max(0, Math.floor(limit)));
    return { checkpoint: last, documents };
  }

  async changesSinceExcept(
    checkpoint: Checkpoint | null,
    limit: number,
    known: ReadonlyMap<string, DocState>,
  ): Promise<ChangeBatch & { scanned: number }> {
    await this.beforeRead();
    if (checkpoint !== null && !isCheckpoint(checkpoint)) return { checkpoint, documents: [], scanned: 0 };
    // An entry is never mutated, so a state held as the current entry itself is that state: no parse, no compare.
    const held = known instanceof EntryStates ? known : undefined;
    return this.index.page(checkpoint, Math.max(0, Math.floor(limit)), (e) => held?.entryOf(e.id) !== e);
  }

  async skipChanges(
    checkpoint: Checkpoint | null,
    count: number,
  ): Promise<{ checkpoint: Checkpoint | null; skipped: number }> {
    await this.beforeRead();
    if (checkpoint !== null && !isCheckpoint(checkpoint)) return { checkpoint, skipped: 0 };
    const { checkpoint: after, scanned } = this.index.page(checkpoint, Math.max(0, Math.floor(count)), () => false);
    return { checkpoint: after, skipped: scanned };
  }

  bulkWrite(rows: readonly CasWrite[], origin: WriteOrigin): Promise<DocState[]> {
    return this.exclusive(async () => {
      this.assertOpen();
      await this.beforeWrite();
      const batch = new Map<string, DocState>();
      const conflicts: DocState[] = [];
      const handedOver = origin.kind === 'peer';
      for (const row of rows) {
        const doc =
          handedOver && isNormalised(row.document, this.primaryKey) ? row.document : this.normalise(row.document);
        const id = docKey(doc, this.primaryKey)!;
        const current = batch.get(id) ?? this.index.get(id)?.doc ?? null;
        // A document that does not exist is always inserted, whatever was expected (docs/PROTOCOL.md §2.5).
        if (current !== null && !docEquals(current, row.expected)) {
          conflicts.push(current);
          continue;
        }
        if (current !== null && docEquals(current, doc)) continue;
        batch.set(id, doc);
      }
      if (batch.size > 0) this.commit(this.index.set(batch), origin);
      return conflicts;
    });
  }

  async getPeerState(key: string): Promise<PeerState | undefined> {
    const s = this.peerStates.get(key);
    return s && { down: s.down, up: s.up, assumed: new Map(s.assumed) };
  }

  async peerStateKeys(): Promise<string[]> {
    return [...this.peerStates.keys()];
  }

  livePeerState(key: string): PeerState {
    let s = this.peerStates.get(key);
    if (!s) this.peerStates.set(key, (s = { down: null, up: null, assumed: new EntryStates(this.index) }));
    return s;
  }

  /** Takes a peer state loaded from disk as the pair's live state (its assumed states as `EntryStates`). */
  protected adoptPeerState(key: string, state: PeerState): void {
    if (state.assumed instanceof EntryStates) state.assumed.index = this.index;
    else {
      const assumed = new EntryStates(this.index);
      for (const [id, doc] of state.assumed) assumed.set(id, doc);
      state.assumed = assumed;
    }
    this.peerStates.set(key, state);
  }

  async setPeerState(key: string, update: PeerStateUpdate): Promise<void> {
    const s = this.livePeerState(key);
    if (update.down !== undefined) s.down = update.down;
    if (update.up !== undefined) s.up = update.up;
    const assumed = s.assumed;
    const given = update.assumed;
    let ids: readonly string[];
    if (given !== undefined && isAssumedChanges(given)) {
      // A fork's batch: ids plus its map, read now. Nothing to copy when that map is ours (`livePeerState`).
      if (given.states !== assumed) {
        for (const id of given.ids) {
          const state = given.states.get(id);
          if (state === undefined) assumed.delete(id);
          else assumed.set(id, state);
        }
      }
      ids = given.ids;
    } else {
      const changed: string[] = [];
      for (const [id, state] of given ?? []) {
        if (state === null) assumed.delete(id);
        else assumed.set(id, state);
        changed.push(id);
      }
      ids = changed;
    }
    this.peerStateChanged(key, { down: update.down !== undefined, up: update.up !== undefined, ids });
  }

  /** Nothing to wait for by default: the memory store holds nothing beyond the process. */
  async durable(): Promise<void> {}

  async flush(): Promise<void> {
    await this.exclusive(() => this.persist());
  }

  close(): Promise<void> {
    // Files, watchers and locks are released even when the final flush fails (e.g. the user's file is broken).
    this.closing ??= (async () => {
      try {
        await this.flush();
      } finally {
        this.closed = true;
        await this.release();
        this.subject.complete();
      }
    })();
    return this.closing;
  }

  /** Records entries that were written (by the API or by ingesting outside edits) and announces them. */
  protected commit(entries: IndexEntry[], origin: WriteOrigin): void {
    const last = entries[entries.length - 1];
    if (!last) return;
    this.committed(entries, origin);
    // Nobody listens while a store opens: its documents (a whole file, maybe) are not parsed for nothing.
    if (this.subject.observed)
      this.subject.next({ checkpoint: { id: last.id, lwt: last.lwt }, documents: entries.map((e) => e.doc), origin });
    // Listeners have seen the states themselves (a fork records them as assumed states by identity, see
    // `EntryStates`): from here on the entries keep their texts only, so the parsed states die young (a pulled page
    // is garbage right after it is written, rather than after the next journal append).
    if (this.compactsEntries) for (const e of entries) e.compact();
  }

  /**
   * Validates a document and turns it into a normalised doc state: a copy, so that the caller's object can change
   * later without changing the store. Documents written with a `peer` origin are the exception when they are
   * normalised already: they come from the replication layer, which validated and normalised them and never
   * touches them again, so they are kept as they are (a copy per document is measurable in a 100k-document sync).
   */
  protected normalise(document: unknown): DocState {
    return normaliseDocument(document, this.primaryKey);
  }

  /** Runs `fn` after every earlier mutation finished; mutations never interleave. */
  protected exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  protected assertOpen(): void {
    if (this.closed) throw new P2PSyncError('E_INTERNAL', 'the store is closed');
  }

  // ---- persistence hooks (no-ops for the memory store) ----

  /** Before a read: e.g. notice outside edits that are due. */
  protected async beforeRead(): Promise<void> {}
  /** Inside the write lock, before a batch is applied: e.g. ingest outside edits first. */
  protected async beforeWrite(): Promise<void> {}
  /** Entries were committed to the index; schedule them for persistence. */
  protected committed(_entries: IndexEntry[], _origin: WriteOrigin): void {}
  /** A peer state changed (the new values are in `peerStates`); schedule it for persistence. */
  protected peerStateChanged(_key: string, _change: PeerStateChange): void {}
  /** Inside the write lock: make everything durable. */
  protected async persist(): Promise<void> {}
  /** Release files, watchers and timers. */
  protected async release(): Promise<void> {}
}

function isAssumedChanges(a: PeerStateUpdate['assumed']): a is AssumedChanges {
  return typeof a === 'object' && a !== null && 'ids' in a && 'states' in a;
}
