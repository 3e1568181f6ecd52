import { compareIds } from '../core/doc.js';
import type { ChangeBatch, Checkpoint, DocState } from '../core/types.js';
import { EntryStates } from './entry-states.js';
import { IndexEntry } from './index-entry.js';

export { IndexEntry };

/**
 * The in-memory heart of every store: documents by id plus the change feed in `(lwt, id)` order.
 *
 * Every write gets an lwt greater than all earlier ones, so the feed only ever grows at its end. A rewritten
 * document leaves its old feed entry behind as stale (detected by identity); stale entries are compacted away once
 * they outnumber live ones, keeping `changesSince` a binary search plus a short scan.
 */
export class DocIndex {
  private byId = new Map<string, IndexEntry>();
  private feed: IndexEntry[] = [];
  private stale = 0;
  private lastLwt = 0;
  /** How many of the ids of the last `set` had an entry already (0: they are all new to this store). */
  lastSetReplaced = 0;

  get size(): number {
    return this.byId.size;
  }

  /** The largest lwt handed out or loaded so far. */
  get clock(): number {
    return this.lastLwt;
  }

  /** Never hand out an lwt at or below `lwt` (e.g. one of a purged tombstone that a peer's checkpoint may hold). */
  advanceClock(lwt: number): void {
    if (Number.isFinite(lwt) && lwt > this.lastLwt) this.lastLwt = lwt;
  }

  get(id: string): IndexEntry | undefined {
    return this.byId.get(id);
  }

  entries(): IterableIterator<IndexEntry> {
    return this.byId.values();
  }

  /**
   * A new last-write time: wall-clock ms with 2 decimals (like RxDB), strictly greater than every earlier one even
   * if the clock goes backwards.
   */
  nextLwt(now = Date.now()): number {
    const floor = Math.round(this.lastLwt * 100) + 1;
    const t = Math.max(Math.round(now * 100), floor) / 100;
    this.lastLwt = t;
    return t;
  }

  /**
   * Loads entries with known lwts (from a sidecar). Any order; must precede `set`. Keeps the clock past the
   * largest lwt seen so later writes stay strictly increasing.
   */
  load(entries: Iterable<IndexEntry>): void {
    for (const e of entries) {
      e.compact();
      const old = this.byId.get(e.id);
      if (old) this.stale++;
      this.byId.set(e.id, e);
      this.feed.push(e);
      if (e.lwt > this.lastLwt) this.lastLwt = e.lwt;
    }
    this.feed.sort(compareEntries);
    this.compactIfNeeded(true);
  }

  /**
   * Like `load` with the entries of `map` and then `more`, taking `map` over as the index's own (its owner must not
   * use it afterwards) when the index is empty: a million-document journal then costs one map, not two.
   */
  loadMap(map: Map<string, IndexEntry>, more: readonly IndexEntry[]): void {
    if (this.byId.size > 0) {
      this.load([...map.values(), ...more]);
      return;
    }
    this.byId = map;
    const feed: IndexEntry[] = [];
    for (const e of map.values()) {
      e.compact();
      feed.push(e);
      if (e.lwt > this.lastLwt) this.lastLwt = e.lwt;
    }
    this.feed = feed;
    this.load(more);
  }

  /**
   * Writes documents with one fresh lwt; returns the new entries in feed order. States held as entries (an
   * `EntryStates`, e.g. a file's documents) are taken as their texts, without a parse.
   */
  set(docs: ReadonlyMap<string, DocState>, lwt = this.nextLwt()): IndexEntry[] {
    const written: IndexEntry[] = [];
    if (docs instanceof EntryStates) {
      for (const [id, held] of docs.held())
        written.push(held instanceof IndexEntry ? held.at(lwt) : new IndexEntry(id, held, lwt));
    } else docs.forEach((doc, id) => written.push(new IndexEntry(id, doc, lwt)));
    written.sort(compareEntries);
    const byId = this.byId;
    let replaced = 0;
    for (const e of written) {
      // One hash operation instead of has + set: the size tells whether the id was there already.
      const size = byId.size;
      byId.set(e.id, e);
      if (byId.size === size) replaced++;
      this.feed.push(e);
    }
    this.stale += replaced;
    this.lastSetReplaced = replaced;
    this.compactIfNeeded(false);
    return written;
  }

  /** Removes documents entirely (tombstone purge). Their feed entries become stale. */
  purge(ids: Iterable<string>): void {
    for (const id of ids) if (this.byId.delete(id)) this.stale++;
    this.compactIfNeeded(false);
  }

  /** Up to `limit` entries strictly after `checkpoint`, in feed order. */
  since(checkpoint: Checkpoint | null, limit: number): IndexEntry[] {
    let i = checkpoint ? this.firstAfter(checkpoint) : 0;
    // Without stale entries (a store just opened, or compacted), every feed entry is current: a page is a slice.
    if (this.stale === 0) return this.feed.slice(i, i + limit);
    const out: IndexEntry[] = [];
    for (; i < this.feed.length && out.length < limit; i++) {
      const e = this.feed[i]!;
      if (this.byId.get(e.id) === e) out.push(e);
    }
    return out;
  }

  /**
   * A change-feed page in the protocol's shape, its documents read only from the entries `read` keeps (all by
   * default); `scanned` counts all.
   */
  page(
    checkpoint: Checkpoint | null,
    limit: number,
    read?: (e: IndexEntry) => boolean,
  ): ChangeBatch & { scanned: number } {
    const entries = this.since(checkpoint, limit);
    const last = entries[entries.length - 1];
    return {
      checkpoint: last ? { id: last.id, lwt: last.lwt } : checkpoint,
      documents: (read ? entries.filter(read) : entries).map((e) => e.doc),
      scanned: entries.length,
    };
  }

  private firstAfter(cp: Checkpoint): number {
    let lo = 0;
    let hi = this.feed.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const e = this.feed[mid]!;
      if (e.lwt < cp.lwt || (e.lwt === cp.lwt && compareIds(e.id, cp.id) <= 0)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private compactIfNeeded(force: boolean): void {
    if (!force && this.stale <= Math.max(1024, this.byId.size)) return;
    this.feed = this.feed.filter((e) => this.byId.get(e.id) === e);
    this.stale = 0;
  }
}

function compareEntries(a: IndexEntry, b: IndexEntry): number {
  return a.lwt - b.lwt || compareIds(a.id, b.id);
}

/** True if `value` has the shape of a checkpoint this library produces. */
export function isCheckpoint(value: unknown): value is Checkpoint {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.id === 'string' && typeof v.lwt === 'number' && Number.isFinite(v.lwt);
}
