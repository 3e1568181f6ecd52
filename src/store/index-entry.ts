import { userFields } from '../core/doc.js';
import type { DocState } from '../core/types.js';

/** `deleted` */
const DELETED = 1;
/** The text held is the user's fields only: the state's text without its last member `"_deleted":false`. */
const USER_TEXT = 2;
/** How a state's compact text ends when `_deleted: false` is its last member (as validation and `toDocState` put it). */
const LIVE_SUFFIX = ',"_deleted":false}';

/**
 * One document with its last-write time. Replaced (never mutated) on every write.
 *
 * Memory (docs/STORES.md, "Memory"): an entry holds its document as the parsed state only until the state's text is
 * made (`compact`, when the journal records it); from then on it holds the compact JSON text alone (a one-byte string
 * about the size of the document's bytes, where the parsed object of a small document takes a third more), and `doc`
 * parses it on demand. For a live document whose `_deleted: false` comes last (nearly all), the text kept is the
 * user's fields only, which is byte for byte its NDJSON line; the journal's text (`text`) adds the member back.
 */
export class IndexEntry {
  /** The parsed state until `compact`, then its text (see `USER_TEXT`). */
  private v: DocState | string;
  private flags: number;
  #lwt: number;

  /**
   * From a state, or from `text`: a state's compact JSON as `text` gives it (then `deleted` says whether it is a
   * tombstone), or with `deleted` undefined and `userText` true, a live document's user fields as `fileText` gives them.
   */
  constructor(
    readonly id: string,
    doc: DocState | string,
    lwt: number,
    deleted?: boolean,
    userText = false,
  ) {
    this.#lwt = lwt;
    this.v = doc;
    if (typeof doc === 'string') this.flags = (deleted === true ? DELETED : 0) | (userText ? USER_TEXT : 0);
    else this.flags = doc._deleted ? DELETED : 0;
  }

  /** A live document from its user fields' compact JSON (`JSON.stringify` of the fields, flattened). */
  static ofUserText(id: string, text: string, lwt: number): IndexEntry {
    return new IndexEntry(id, text, lwt, false, true);
  }

  get deleted(): boolean {
    return (this.flags & DELETED) !== 0;
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
    const e = new IndexEntry(this.id, this.v, lwt);
    e.flags = this.flags;
    return e;
  }

  /** The document's state: the object this entry was made with until `compact`, then a fresh parse of its text. */
  get doc(): DocState {
    const v = this.v;
    if (typeof v !== 'string') return v;
    const doc = JSON.parse(v) as DocState;
    if (this.flags & USER_TEXT) doc._deleted = false;
    return doc;
  }

  /** The state's compact JSON text (`_deleted` included), as the journal records it. */
  get text(): string {
    const v = this.v;
    if (typeof v !== 'string') return JSON.stringify(v);
    return this.flags & USER_TEXT ? v.slice(0, -1) + LIVE_SUFFIX : v;
  }

  /** The user's fields as compact JSON (a live document's NDJSON line), where that costs no parse. */
  get fileText(): string | undefined {
    const v = this.v;
    if (typeof v !== 'string') {
      const text = JSON.stringify(v);
      return !v._deleted && text.endsWith(LIVE_SUFFIX) ? text.slice(0, -LIVE_SUFFIX.length) + '}' : undefined;
    }
    return this.flags & USER_TEXT ? v : undefined;
  }

  /** The user's fields (what the user's file holds of the document). */
  fields(): Record<string, unknown> {
    const text = this.fileText;
    return text !== undefined ? (JSON.parse(text) as Record<string, unknown>) : userFields(this.doc);
  }

  /** Both entries have the same text (so equal states). */
  sameText(other: IndexEntry): boolean {
    if (this === other) return true;
    const a = this.v;
    const b = other.v;
    if (typeof a === 'string' && typeof b === 'string' && this.flags === other.flags) return a === b;
    return this.text === other.text;
  }

  /** This entry still holds `doc` itself (it was made with it and is not compacted yet). */
  holds(doc: DocState): boolean {
    return this.v === doc;
  }

  /** Keeps the text only: the parsed state is released to the garbage collector. */
  compact(): void {
    const v = this.v;
    if (typeof v === 'string') return;
    const text = JSON.stringify(v);
    if (!v._deleted && text.endsWith(LIVE_SUFFIX)) {
      this.v = flat(text.slice(0, -LIVE_SUFFIX.length) + '}');
      this.flags |= USER_TEXT;
    } else this.v = flat(text);
  }
}

/**
 * `text` as one flat string. V8 may hold a string as a rope of pieces, some of them a document's own strings (which a
 * kept text would then keep alive, costing more than the object); reading a character flattens it in place.
 */
export function flat(text: string): string {
  text.charCodeAt(0);
  return text;
}
