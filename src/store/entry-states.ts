import type { DocState } from '../core/types.js';
import type { DocIndex } from './doc-index.js';
import { IndexEntry } from './index-entry.js';

/**
 * Document states by id, each held either as an index entry (the one compact text the index holds too, see
 * `IndexEntry`), parsed when it is read, or as a parsed state. Reads and iteration give `DocState`s, like any
 * `Map<string, DocState>`. Used for a fork's assumed master states (`PeerState.assumed`: after a pull nearly every
 * one is the very state the fork stored) and for what the user's file holds (`FileWriter`).
 */
export class EntryStates extends Map<string, DocState> {
  /** Where states parsed by `get` came from, when the owner wants to map them back to their entries. */
  parsed: WeakMap<DocState, IndexEntry> | undefined;

  /** The store's index: a state set while its entry still holds it is kept as the entry. */
  index: DocIndex | undefined;

  constructor(index?: DocIndex) {
    super();
    this.index = index;
  }

  override set(id: string, state: DocState): this {
    const e = this.index?.get(id);
    return super.set(id, e?.holds(state) ? (e as unknown as DocState) : state);
  }

  /** Holds `entry`'s state (a marker of the journal: "the document's recorded state"). */
  setEntry(id: string, entry: IndexEntry): void {
    super.set(id, entry as unknown as DocState);
  }

  /** Holds `v` as it is: an entry as an entry (no parse), a state as a state. */
  hold(id: string, v: IndexEntry | DocState): void {
    if (isEntry(v)) this.setEntry(id, v);
    else this.set(id, v);
  }

  /** The index entry this id's state is held as, if it is held as one. */
  entryOf(id: string): IndexEntry | undefined {
    const v = super.get(id);
    return isEntry(v) ? v : undefined;
  }

  override get(id: string): DocState | undefined {
    const v = super.get(id);
    if (!isEntry(v)) return v;
    const doc = v.doc;
    this.parsed?.set(doc, v);
    return doc;
  }

  override forEach(fn: (state: DocState, id: string, map: Map<string, DocState>) => void, thisArg?: unknown): void {
    super.forEach((v, id) => fn.call(thisArg, stateOf(v)!, id, this));
  }

  override *entries(): MapIterator<[string, DocState]> {
    for (const [id, v] of super.entries()) yield [id, stateOf(v)!];
  }

  override *values(): MapIterator<DocState> {
    for (const v of super.values()) yield stateOf(v)!;
  }

  /** Every id with its state as held: an entry or a state (no parse). */
  *held(): Generator<[string, IndexEntry | DocState]> {
    for (const [id, v] of super.entries()) yield [id, v];
  }

  override [Symbol.iterator](): MapIterator<[string, DocState]> {
    return this.entries();
  }
}

/** Every id of `map` with its state as held (see `EntryStates.held`); a plain map's states as they are. */
export function heldOf(map: Map<string, DocState>): Iterable<[string, IndexEntry | DocState]> {
  return map instanceof EntryStates ? map.held() : map;
}

function isEntry(v: unknown): v is IndexEntry {
  return v instanceof IndexEntry;
}

function stateOf(v: DocState | undefined): DocState | undefined {
  return isEntry(v) ? v.doc : v;
}
