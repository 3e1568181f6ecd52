import type { DocState } from '../core/types.js';

/**
 * One document with its last-write time. Replaced (never mutated) on every write.
 *
 * Memory (docs/STORES.md, "Memory"): an entry holds its document as the parsed state only until the state's text is
 * made (`compact`, when the journal records it); from then on it holds the canonical compact JSON text alone (a
 * one-byte string about the size of the document's bytes, against two to three times that for the parsed object),
 * and `doc` parses it on demand. That one text serves the journal record and the user's file line as well.
 */
export class IndexEntry {
  /** The parsed state, until `compact`. */
  private state: DocState | undefined;
  /** `JSON.stringify(state)`, once made. */
  private json: string | undefined;
  readonly deleted: boolean;
  #lwt: number;

  /** From a state, or from `text`, a state's compact JSON as `text` makes it (then `deleted` says if it is a tombstone). */
  constructor(
    readonly id: string,
    doc: DocState | string,
    lwt: number,
    deleted?: boolean,
  ) {
    this.#lwt = lwt;
    if (typeof doc === 'string') {
      this.json = doc;
      this.deleted = deleted === true;
    } else {
      this.state = doc;
      this.deleted = doc._deleted;
    }
  }

  /** The last-write time; 0 for a state read from the user's file that no store holds yet. */
  get lwt(): number {
    return this.#lwt;
  }

  /**
   * This state at `lwt`: the entry itself while it is at 0 (a document of a file just read, which nothing refers to
   * by its lwt: it is not in an index or a feed), else a new entry sharing the text (or the parsed state while there
   * is no text yet). Taking the file's entries themselves leaves one entry per document, not two, while a store opens.
   */
  at(lwt: number): IndexEntry {
    if (this.#lwt === 0) {
      this.#lwt = lwt;
      return this;
    }
    return new IndexEntry(this.id, this.json ?? this.state!, lwt, this.deleted);
  }

  /** The document's state: the object this entry was made with until `compact`, then a fresh parse of `text`. */
  get doc(): DocState {
    return this.state ?? (JSON.parse(this.json!) as DocState);
  }

  /** The state's compact JSON text (`_deleted` included), made once. */
  get text(): string {
    return (this.json ??= flatText(this.state!));
  }

  /** This entry still holds `doc` itself (it was made with it and is not compacted yet). */
  holds(doc: DocState): boolean {
    return this.state === doc;
  }

  /** Keeps the text only: the parsed state is released to the garbage collector. */
  compact(): void {
    if (this.state === undefined) return;
    this.json ??= flatText(this.state);
    this.state = undefined;
  }
}

/**
 * `JSON.stringify(doc)` as one flat string. V8 may return a rope of pieces, some of them the document's own strings
 * (which a kept text would then keep alive, costing more than the object); reading a character flattens it in place.
 */
function flatText(doc: DocState): string {
  const text = JSON.stringify(doc);
  text.charCodeAt(0);
  return text;
}
