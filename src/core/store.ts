import type { Observable } from 'rxjs';
import type {
  ChangeBatch,
  CasWrite,
  Checkpoint,
  DocState,
  PeerState,
  PeerStateUpdate,
  StoreChange,
  WriteOrigin,
} from './types.js';

/**
 * The one document storage contract replication depends on. Implementations: memory, JSON file (lowdb), NDJSON file,
 * and the encryption wrapper around any of them. Every implementation passes the contract suite in
 * test/store/contract.ts. Forks keep their per-pair state apart, in a `PeerStateStore`.
 *
 * Ordering: every committed document gets a last-write time `lwt` (ms, 2 decimals) strictly greater than any
 * earlier one of this replica, so `(lwt, id)` is a total order over the feed and a checkpoint is a resume point.
 */
export interface Store {
  /** Name of the primary key field (default `id`). Keys are non-empty strings. */
  readonly primaryKey: string;
  /** This replica's persistent identity (docs/PROTOCOL.md §2.3), kept across restarts. */
  readonly storageToken: string;
  /** Committed change batches, in commit order, each with a valid resume checkpoint. Completes on close. */
  readonly changes$: Observable<StoreChange>;

  /** Current states (tombstones included) of the given ids; missing ids are absent from the map. */
  get(ids: readonly string[]): Promise<Map<string, DocState>>;

  /** All live documents (no tombstones), in key order. */
  all(): Promise<DocState[]>;

  /** How many live documents there are (what `all()` would return, without building or sorting it). */
  count(): Promise<number>;

  /**
   * Documents changed strictly after `checkpoint` in `(lwt, id)` order, tombstones included: exactly `limit`
   * documents while more remain. The returned checkpoint is that of the last document, or the input when
   * there are none. A checkpoint this store did not produce (wrong shape) yields an empty page.
   */
  changesSince(checkpoint: Checkpoint | null, limit: number): Promise<ChangeBatch>;

  /**
   * Optional: the page `changesSince` gives, less the documents whose current state `known` holds as this store's
   * own record of it (a fork's assumed states, which hold the very records its pulls wrote), left out without being
   * read. `scanned` counts the page before that, so more may remain while `scanned` equals `limit`.
   */
  changesSinceExcept?(
    checkpoint: Checkpoint | null,
    limit: number,
    known: ReadonlyMap<string, DocState>,
  ): Promise<ChangeBatch & { scanned: number }>;

  /**
   * Optional: where the feed stands after the first `count` changes after `checkpoint` (`skipped` is less than
   * `count` when the feed ends first), without reading those documents.
   */
  skipChanges?(
    checkpoint: Checkpoint | null,
    count: number,
  ): Promise<{ checkpoint: Checkpoint | null; skipped: number }>;

  /**
   * Compare-and-set batch write, atomic per batch. Each row is written only where the current state deep-equals
   * `expected` (normalised: missing `_deleted` is false; key order ignored). Rows whose document equals the
   * current state are not rewritten (no new lwt, no change event) and count as written.
   * Returns the current state of every row that was not written (a conflict), in input order.
   * Later rows for the same id see the effect of earlier rows in the batch.
   */
  bulkWrite(rows: readonly CasWrite[], origin: WriteOrigin): Promise<DocState[]>;

  /**
   * The durability barrier (docs/STORES.md, "Durability"): resolves once every write (and, for a store that is also
   * the `PeerStateStore`, every peer-state change) made before the call survives a crash of this process or of the
   * machine (for a file store: fsynced in its journal; the user's file may follow later). Replication awaits it
   * before acknowledging a `masterWrite`. Rejects while the store cannot write (E_IO: disk full, I/O error,
   * read-only); the writes stay in memory and are retried.
   */
  durable(): Promise<void>;

  /**
   * Resolves once everything written so far is durable in the user's file and the sidecar. Rejects while a file
   * store cannot write (its file is invalid or missing during a live session: the file's error code, e.g. E_PARSE,
   * or E_IO); the writes stay in the store and reach the file once it is valid again.
   */
  flush(): Promise<void>;
  /**
   * Flushes, stops watching, releases files and locks, completes `changes$`. Idempotent. Releases even when the
   * final flush fails, and then rejects with that error (the unflushed writes are lost; so are the peer states
   * recorded with them, so replication re-fetches them next time).
   */
  close(): Promise<void>;
}

/**
 * Where a fork keeps its state for each (collection, topic, master token) pair (docs/PROTOCOL.md §4.1): checkpoints
 * and assumed master states. Apart from `Store` as RxDB keeps its meta instance apart from the documents. The file
 * and memory stores (and the encryption wrapper) implement both interfaces on one object, because a file store's
 * journal records a batch of documents and the checkpoint that follows it together (docs/STORES.md, "Durability");
 * its `durable()` and `flush()` cover peer states too.
 */
export interface PeerStateStore {
  /** Fork-side replication state for one pair (docs/PROTOCOL.md §4.1); undefined if none was saved. */
  getPeerState(key: string): Promise<PeerState | undefined>;
  /** Merges an update into the pair's state; persisted with the next flush. */
  setPeerState(key: string, update: PeerStateUpdate): Promise<void>;
  /** Optional: the keys of every saved peer state (what a rekey re-encrypts). */
  peerStateKeys?(): Promise<string[]>;
  /**
   * Optional: the pair's state object itself rather than a copy (created empty when missing), so that a fork keeps
   * one map of assumed states, not two. Whoever changes `assumed` in place reports the changed ids right after with
   * `setPeerState(key, {assumed: {ids, states: <this map>}})`, which is what persists them.
   */
  livePeerState?(key: string): PeerState;
}

/** `store.skipChanges` where the store offers it, else the same answer read through `changesSince`. */
export function skipChanges(
  store: Store,
  checkpoint: Checkpoint | null,
  count: number,
): Promise<{ checkpoint: Checkpoint | null; skipped: number }> {
  if (store.skipChanges) return store.skipChanges(checkpoint, count);
  return store.changesSince(checkpoint, count).then((p) => ({ checkpoint: p.checkpoint, skipped: p.documents.length }));
}
