import { docEquals } from '../core/doc.js';
import type { DocState, PeerState } from '../core/types.js';
import { EntryStates } from './entry-states.js';
import type { IndexEntry } from './doc-index.js';
import type { PeerStateChange } from './indexed-store.js';
import { PairList } from './bytes.js';
import type { AssumedRecord, PeerRecord, PeerRecordOut } from './sidecar.js';

interface DirtyPeer {
  down: boolean;
  up: boolean;
  /** Ids whose assumed state changed, in order (an id may repeat: cheaper than a Set per document in a burst). */
  ids: string[];
}

/** A batch of peer records ready to append, and what to do once the append succeeded or failed. */
export interface PeerBatch {
  records: PeerRecordOut[];
  done(ok: boolean): void;
}

const ASSUMED_PER_RECORD = 2_000;

/**
 * Decides how peer states go into the sidecar incrementally. Only what changed is written; an assumed state equal
 * to the document's recorded state is written as a marker (`1`), so a fork that pulled 100k documents stores 100k
 * tiny markers once, not 100k bodies on every batch.
 *
 * A marker stands for "the document's state as the journal records it in the end" (see `Sidecar.load`), so it is
 * only right while the document keeps that state. Whenever a document changes (or is purged), every assumed state
 * of it that no longer matches the new state is written out as a full body in the same batch. This does not track
 * which ids the journal holds as markers: a document changed twice before its assumed state moves on gets its
 * body written twice, which costs less than a set of every marker id updated on every pulled document.
 */
export class PeerJournal {
  private dirty = new Map<string, DirtyPeer>();

  get pending(): boolean {
    return this.dirty.size > 0;
  }

  changed(key: string, change: PeerStateChange): void {
    let d = this.dirty.get(key);
    if (!d) this.dirty.set(key, (d = { down: false, up: false, ids: [] }));
    if (change.down) d.down = true;
    if (change.up) d.up = true;
    for (const id of change.ids) d.ids.push(id);
  }

  /**
   * Records for the next batch: the dirty peer states, plus full bodies of assumed states that no longer match
   * their document among `changed` (documents written in this batch, with their new state) and `purged` ids.
   * `entryOf` gives a document's entry as recorded by the end of this batch.
   */
  take(
    peers: Map<string, PeerState>,
    changed: readonly IndexEntry[],
    purged: readonly string[],
    entryOf: (id: string) => IndexEntry | undefined,
  ): PeerBatch {
    const dirty = this.dirty;
    this.dirty = new Map();
    const records: PeerRecordOut[] = [];
    for (const [k, s] of peers) {
      const d = dirty.get(k);
      const a = new PairList<string, AssumedRecord>();
      if (d) {
        for (const id of d.ids) a.push(id, encode(s.assumed, id, entryOf(id)) ?? 0);
      }
      // An assumed state equal to the new document needs nothing (a marker stays right, a body too).
      for (const e of changed) {
        const state = encode(s.assumed, e.id, e);
        if (state !== undefined && state !== 1) a.push(e.id, state);
      }
      for (const id of purged) {
        const state = s.assumed.get(id);
        if (state !== undefined) a.push(id, state);
      }
      const r: PeerRecordOut = { k };
      if (d?.down) r.down = s.down;
      if (d?.up) r.up = s.up;
      if (a.length > 0) r.a = a;
      if (d || a.length > 0) records.push(r);
    }
    return {
      records,
      done: (ok) => {
        if (ok) return;
        // Not persisted: everything that was dirty is dirty again (the changed documents come back with the
        // store's own retry of this batch).
        for (const [k, d] of dirty) {
          const now = this.dirty.get(k);
          if (!now) this.dirty.set(k, d);
          else {
            now.down ||= d.down;
            now.up ||= d.up;
            now.ids = d.ids.concat(now.ids);
          }
        }
      },
    };
  }

  /** Full records for a snapshot; clears what was dirty (the snapshot holds it). */
  snapshot(peers: Map<string, PeerState>, entryOf: (id: string) => IndexEntry | undefined): PeerRecord[][] {
    this.dirty.clear();
    const out: PeerRecord[][] = [];
    for (const [k, s] of peers) {
      const records: PeerRecord[] = [{ k, reset: 1, down: s.down, up: s.up, a: [] }];
      for (const id of s.assumed.keys()) {
        let last = records[records.length - 1]!;
        if (last.a!.length >= ASSUMED_PER_RECORD) records.push((last = { k, a: [] }));
        last.a!.push([id, encode(s.assumed, id, entryOf(id))!]);
      }
      out.push(records);
    }
    return out;
  }
}

/**
 * `1` (a marker) if the assumed state of `id` is the state of `entry` (the document's), else the state itself;
 * undefined if there is none. A state held as that very entry (see `EntryStates`) is a marker without a parse.
 */
function encode(assumed: Map<string, DocState>, id: string, entry: IndexEntry | undefined): AssumedRecord | undefined {
  const held = assumed instanceof EntryStates ? assumed.entryOf(id) : undefined;
  if (held !== undefined && entry !== undefined && held.sameText(entry)) return 1;
  const state = assumed.get(id);
  if (state === undefined) return undefined;
  return entry !== undefined && (entry.holds(state) || docEquals(entry.doc, state)) ? 1 : state;
}
