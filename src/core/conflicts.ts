import type { DocState } from './types.js';

/**
 * A losing version kept by the peer that resolved a conflict (README "Conflicts"). Kept versions never travel: they
 * stay with the replica whose fork resolved the conflict, beside its sidecar, until `p2psync conflicts resolve`.
 */
export interface KeptVersion {
  /** Unique per kept version (random): what `conflicts resolve` clears. */
  vid: string;
  /** The document's primary key. */
  id: string;
  /** When it was kept (ISO 8601). */
  time: string;
  /** Storage token of the peer on the other side of the conflict. */
  peer: string;
  /** The strategy that resolved it (`master`, `lww`, `merge`, `handler:<file>`). */
  strategy: string;
  /** Whose version it is: this replica's (`local`, the fork's write) or the peer's (`remote`, the master's). */
  side: 'local' | 'remote';
  /** `merge`: the fields both sides changed, where this version's values lost. */
  fields?: string[];
  /** The version as it was, `_deleted` included (a delete that lost is kept as its tombstone). */
  document: DocState;
}

/** Where replication puts the versions a resolution discards. Resolves once they are durable. */
export interface ConflictKeeper {
  keep(versions: readonly KeptVersion[]): Promise<void>;
}
