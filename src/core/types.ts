/**
 * Shared vocabulary of p2psync. No I/O here: only the shapes that travel between the layers
 * (store, replication, transport, signaling, CLI) and on the wire (docs/PROTOCOL.md §2-3).
 */

/** A parsed JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * A document as it travels on the wire (docs/PROTOCOL.md §3): the user's fields plus `_deleted`.
 * `_deleted` is always a boolean; `_meta`, `_rev` and other internals never appear.
 * Deletes are tombstones: the last body of the document with `_deleted: true`.
 */
export interface DocState {
  [field: string]: Json | undefined;
  _deleted: boolean;
}

/**
 * A position in a store's change feed, RxDB-compatible (docs/PROTOCOL.md §2.4): the `(lwt, id)` of the last
 * document seen. `lwt` is the store's last-write time in ms with 2 decimals, strictly increasing per replica.
 */
export interface Checkpoint {
  id: string;
  lwt: number;
}

/** One page of a change feed, or one batch of a change stream. */
export interface ChangeBatch {
  /** A valid resume point: `changesSince(checkpoint)` continues right after the last document. */
  checkpoint: Checkpoint | null;
  documents: DocState[];
}

/** Where a write came from. Replication uses it to tell its own writes from local ones. */
export type WriteOrigin =
  /** A local write through the API or the CRUD commands. */
  | { kind: 'local' }
  /** Another program edited the user's file; p2psync turned the difference into writes. */
  | { kind: 'outside' }
  /** Written by replication on behalf of the peer with this storage token. */
  | { kind: 'peer'; peerToken: string };

/** A batch of changes the store committed, in `(lwt, id)` order. */
export interface StoreChange extends ChangeBatch {
  checkpoint: Checkpoint;
  origin: WriteOrigin;
}

/**
 * One compare-and-set write: `document` replaces the current state only if the current state deep-equals
 * `expected` (`null`: the document must not exist, not even as a tombstone). See docs/PROTOCOL.md §2.5.
 */
export interface CasWrite {
  document: DocState;
  expected: DocState | null;
}

/**
 * Replication state a fork keeps per (topic, master token) pair (docs/PROTOCOL.md §4.1), persisted in the sidecar
 * so that restarts are incremental.
 */
export interface PeerState {
  /** Last master checkpoint applied (opaque to the fork, always a JSON object or null). */
  down: Json;
  /** Position in this store's own feed up to which local changes were pushed. */
  up: Checkpoint | null;
  /** Last known master state per document id. */
  assumed: Map<string, DocState>;
}

/**
 * Assumed states given by id and where to read them: `states.get(id)` for every id in `ids` (ids may repeat; one
 * missing from `states` is removed). Read during the `setPeerState` call. What a fork hands over after each batch:
 * no pair and no extra map entry per document.
 */
export interface AssumedChanges {
  readonly ids: readonly string[];
  readonly states: ReadonlyMap<string, DocState>;
}

/** An incremental update of a PeerState; absent members are left unchanged. */
export interface PeerStateUpdate {
  down?: Json;
  up?: Checkpoint | null;
  /** Assumed master states to set (`null` removes the entry), as pairs or as `AssumedChanges`. */
  assumed?: Iterable<[string, DocState | null]> | AssumedChanges;
}
