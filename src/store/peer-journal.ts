import { docEquals } from '../core/doc.js';
import type { DocState, PeerState, PeerStateUpdate } from '../core/types.js';
import type { AssumedRecord, PeerRecord } from './sidecar.js';

interface DirtyPeer {
  down: boolean;
  up: boolean;
  assumed: Set<string>;
}

/** A batch of peer records ready to append, and what to do once the append succeeded or failed. */
export interface PeerBatch {
  records: PeerRecord[];
  done(ok: boolean): void;
}

const ASSUMED_PER_RECORD = 2_000;

/**
 * Decides how peer states go into the sidecar incrementally. Only what changed is written; an assumed state equal
 * to the document's recorded state is written as a marker (`1`), so a fork that pulled 100k documents stores 100k
 * tiny markers once, not 100k bodies on every batch. A marker is only valid while the document keeps that state,
 * so when a document changes, every marker on it that no longer matches is rewritten as a full body in the same
 * batch.
 */
export class PeerJournal {
  private dirty = new Map<string, DirtyPeer>();

  /** Per peer key, the ids whose assumed state the sidecar holds as a marker. */
  constructor(private markers: Map<string, Set<string>>) {}

  get pending(): boolean {
    return this.dirty.size > 0;
  }

  changed(key: string, update: PeerStateUpdate & { assumed: Array<[string, DocState | null]> }): void {
    let d = this.dirty.get(key);
    if (!d) this.dirty.set(key, (d = { down: false, up: false, assumed: new Set() }));
    if (update.down !== undefined) d.down = true;
    if (update.up !== undefined) d.up = true;
    for (const [id] of update.assumed) d.assumed.add(id);
  }

  /**
   * Records for the next batch: the dirty peer states, plus full bodies for markers on `changedIds` (documents
   * written or purged in this batch) that no longer match. `docOf` gives a document's state as recorded by the
   * end of this batch.
   */
  take(peers: Map<string, PeerState>, changedIds: Iterable<string>, docOf: (id: string) => DocState | undefined): PeerBatch {
    const dirty = this.dirty;
    this.dirty = new Map();
    const byKey = new Map<string, PeerRecord>();
    const addMarker: Array<[string, string]> = [];
    const dropMarker: Array<[string, string]> = [];
    const recordFor = (k: string): PeerRecord => {
      let r = byKey.get(k);
      if (!r) byKey.set(k, (r = { k, a: [] }));
      return r;
    };
    const encode = (k: string, id: string, state: DocState | undefined): AssumedRecord => {
      if (!state) {
        dropMarker.push([k, id]);
        return 0;
      }
      const doc = docOf(id);
      if (doc && (doc === state || docEquals(doc, state))) {
        addMarker.push([k, id]);
        return 1;
      }
      dropMarker.push([k, id]);
      return state;
    };
    for (const [k, d] of dirty) {
      const s = peers.get(k);
      const r = recordFor(k);
      if (d.down) r.down = s?.down ?? null;
      if (d.up) r.up = s?.up ?? null;
      for (const id of d.assumed) r.a!.push([id, encode(k, id, s?.assumed.get(id))]);
    }
    const changed = [...changedIds];
    for (const [k, ids] of this.markers) {
      if (ids.size === 0) continue;
      const s = peers.get(k);
      for (const id of changed) {
        if (!ids.has(id) || dirty.get(k)?.assumed.has(id)) continue;
        const state = s?.assumed.get(id);
        const doc = docOf(id);
        if (state && doc && (doc === state || docEquals(doc, state))) continue;
        recordFor(k).a!.push([id, encode(k, id, state)]);
      }
    }
    const records = [...byKey.values()].map((r) => (r.a!.length === 0 ? { ...r, a: undefined } : r));
    return {
      records: records.map(stripUndefined),
      done: (ok) => {
        if (ok) {
          for (const [k, id] of dropMarker) this.markers.get(k)?.delete(id);
          for (const [k, id] of addMarker) this.markersOf(k).add(id);
          return;
        }
        // Not persisted: everything that was dirty is dirty again.
        for (const [k, d] of dirty) {
          const now = this.dirty.get(k);
          if (!now) this.dirty.set(k, d);
          else {
            now.down ||= d.down;
            now.up ||= d.up;
            for (const id of d.assumed) now.assumed.add(id);
          }
        }
      },
    };
  }

  /** Full records for a snapshot; resets the dirty state and the markers to what the snapshot holds. */
  snapshot(peers: Map<string, PeerState>, docOf: (id: string) => DocState | undefined): PeerRecord[][] {
    this.dirty.clear();
    this.markers = new Map();
    const out: PeerRecord[][] = [];
    for (const [k, s] of peers) {
      const ids = this.markersOf(k);
      const records: PeerRecord[] = [{ k, reset: 1, down: s.down, up: s.up, a: [] }];
      for (const [id, state] of s.assumed) {
        let last = records[records.length - 1]!;
        if (last.a!.length >= ASSUMED_PER_RECORD) records.push((last = { k, a: [] }));
        const doc = docOf(id);
        if (doc && (doc === state || docEquals(doc, state))) {
          last.a!.push([id, 1]);
          ids.add(id);
        } else last.a!.push([id, state]);
      }
      out.push(records);
    }
    return out;
  }

  private markersOf(k: string): Set<string> {
    let ids = this.markers.get(k);
    if (!ids) this.markers.set(k, (ids = new Set()));
    return ids;
  }
}

function stripUndefined(r: PeerRecord): PeerRecord {
  const out: PeerRecord = { k: r.k };
  if (r.down !== undefined) out.down = r.down;
  if (r.up !== undefined) out.up = r.up;
  if (r.a !== undefined) out.a = r.a;
  return out;
}
