import { open, stat, type FileHandle } from 'node:fs/promises';
import { P2PSyncError } from '../core/errors.js';
import type { Checkpoint, DocState, Json, PeerState } from '../core/types.js';
import { EntryStates } from './entry-states.js';
import { IndexEntry } from './doc-index.js';
import { ByteBuffer, ChunkWriter, JsonSlices, type PairList } from './bytes.js';
import { ioError, writeFileAtomicWith, type FileVersion } from './fs-util.js';
import { fileLines, type FileLine } from './line-reader.js';

/**
 * The sidecar `<file>.p2psync`: an append-only NDJSON journal of everything p2psync knows beyond the user's file.
 *
 *   line 1      header: {"p2psync":"sidecar","v":1,"token":...,"key":...,"collection":...,"created":...}
 *   line 2...   write-ahead records: {"t":"w","s":seq,"d":[[lwt,docState],...],"x":[purged ids],"p":[peer records],"c":clock}
 *               file saves:          {"t":"b","f":fileVersion,"w":seq}
 *               batches (snapshots and journals written before write-ahead records existed):
 *                                    {"t":"b","d":[[lwt,docState],...],"x":[...],"p":[...],"f":fileVersion,"c":clock}
 *
 * Durability rule (docs/STORES.md, "Durability"): every committed write reaches the journal as a write-ahead record
 * (`WriteAhead`, group commit: one fsync for every record cut while the previous fsync was in flight) before the
 * user's file; a file save then appends `{"t":"b","f":...,"w":s}`: the file at version `f` holds everything of the
 * write-ahead records up to sequence number `s`. On load, write-ahead records after the last file save that covers
 * them are `unsaved`: newer than the file, written into it on open, never mistaken for outside edits. A line is
 * all or nothing: a torn last line (a crash mid-append) is dropped on load, and with it any peer record it held,
 * so a checkpoint is never ahead of the documents it covers (they are in the same or an earlier line). A doc record holds the full doc state as p2psync last wrote or read it (for
 * tombstones: the last body with `_deleted: true`). Peer records are incremental; an assumed master state is
 * stored as `1` when it equals the doc's recorded state (the common case after a pull), as a full body otherwise,
 * and `0` removes it. Once most of its records are superseded the journal is rewritten atomically (a snapshot).
 */

export const SIDECAR_SUFFIX = '.p2psync';
const DOCS_PER_LINE = 2_000;

export interface SidecarHeader {
  p2psync: 'sidecar';
  v: 1;
  token: string;
  key: string;
  collection: string | null;
  created: string;
}

/** An assumed master state in a peer record: 0 removes, 1 means "equals the doc's recorded state". */
export type AssumedRecord = 0 | 1 | DocState;

export interface PeerRecord {
  k: string;
  /** Start from an empty state (snapshots). */
  reset?: 1;
  down?: Json;
  up?: Checkpoint | null;
  a?: Array<[string, AssumedRecord]>;
}

export interface BatchRecord {
  t: 'b';
  /** A file save: the user's file at `f` holds every write-ahead record up to this sequence number. */
  w?: number;
  d?: Array<[number, DocState]>;
  x?: string[];
  p?: PeerRecord[];
  f?: FileVersion;
  /** The store's clock (largest lwt handed out), so purging tombstones never lets lwts go backwards. */
  c?: number;
}

/** A write-ahead record: committed documents, purges and peer records, in commit order (see the header comment). */
export interface WalRecord {
  t: 'w';
  /** Sequence number, increasing along the journal. */
  s: number;
  d?: Array<[number, DocState]>;
  x?: string[];
  p?: PeerRecord[];
  c?: number;
}

/** A write-ahead record as written (documents and assumed states turned into pairs a slice at a time). */
export interface WalRecordOut extends Omit<WalRecord, 'd' | 'p'> {
  d?: EntryPairs;
  p?: PeerRecordOut[];
}

/** A peer record as written: its assumed states may be a `PairList` (written a slice at a time). */
export interface PeerRecordOut extends Omit<PeerRecord, 'a'> {
  a?: Array<[string, AssumedRecord]> | PairList<string, AssumedRecord>;
}

/** A batch as written: its documents are entries, turned into `[lwt, doc]` pairs a slice at a time. */
export interface BatchRecordOut extends Omit<BatchRecord, 'd' | 'p'> {
  d?: EntryPairs;
  p?: PeerRecordOut[];
}

/** The `d` member of a batch from index entries. */
export class EntryPairs extends JsonSlices {
  constructor(private readonly entries: readonly IndexEntry[]) {
    super();
  }

  get length(): number {
    return this.entries.length;
  }

  ids(): string[] {
    return this.entries.map((e) => e.id);
  }

  slice(start: number, end: number): Array<[number, DocState]> {
    return this.entries.slice(start, end).map((e) => [e.lwt, e.doc]);
  }

  /** The entries' own texts spliced in: a document is serialised once, for the journal and the user's file. */
  override sliceJson(start: number, end: number): string {
    return pairsJson(this.entries, start, end);
  }
}

/** `[lwt,doc],...` for entries `[start, end)`, from their texts. */
function pairsJson(entries: readonly IndexEntry[], start: number, end: number): string {
  let out = '';
  for (let i = start; i < end && i < entries.length; i++) {
    const e = entries[i]!;
    out += `${i > start ? ',' : ''}[${JSON.stringify(e.lwt)},${e.text}]`;
  }
  return out;
}

/** What a sidecar holds after replaying it. */
export interface SidecarContent {
  header: SidecarHeader;
  /** Every document as the user's file at `file` holds it (tombstones included). */
  docs: Map<string, IndexEntry>;
  /** Documents of write-ahead records that no file save covers: newer than `docs`, not in the user's file yet. */
  unsaved: Map<string, IndexEntry>;
  /** Every state the write-ahead records after the last covering file save gave each of the `unsaved` ids, in order. */
  unsavedStates: Map<string, DocState[]>;
  /** The largest write-ahead sequence number in the journal (0 if none). */
  seq: number;
  peers: Map<string, PeerState>;
  /** Per peer, the ids whose assumed state was stored as a marker (resolved against the final documents by `load`). */
  markers: Map<string, Set<string>>;
  file: FileVersion | undefined;
  clock: number;
  /** The journal ended in a torn or unterminated line: rewrite it before appending. */
  torn: boolean;
  /** The incomplete last line that was dropped (a crash mid-append, or a sidecar cut short): its line and size. */
  dropped?: { line: number; bytes: number };
  bytes: number;
  /** Document and assumed-state records in the journal (live or superseded), to decide when to compact. */
  records: number;
}

/** What a compact journal will hold, captured at one moment (see `Sidecar.snapshotOf`). */
export interface SidecarSnapshot {
  header: SidecarHeader;
  entries: IndexEntry[];
  peers: PeerRecord[][];
  /** Document and assumed-state records in it. */
  records: number;
}

export class Sidecar {
  private handle: FileHandle | undefined;
  private ino = -1;
  /** Size of the journal now, and right after the last snapshot. */
  bytes = 0;
  /** Document and assumed-state records in the journal, live or superseded. */
  private records = 0;
  /** Where appends and snapshots are encoded on their way to the disk (one at a time). */
  private readonly out = new ByteBuffer();
  /** An append failed part way: the journal may end in a torn line. */
  private broken = false;

  constructor(readonly path: string) {}

  /** Open for appending (not before the first snapshot of a new journal, nor after a failed append). */
  get appendable(): boolean {
    return this.handle !== undefined && !this.broken;
  }

  /**
   * Replays the journal; undefined if there is none. Throws E_SIDECAR if it is damaged beyond a torn tail.
   * `share(id, doc)` may return an equal state to keep instead of `doc` (the user file's, parsed already), so that a
   * store does not hold two copies of every document while it opens.
   */
  static async load(path: string, primaryKey: string, share?: ShareDoc): Promise<SidecarContent | undefined> {
    const lines = await fileLines(path, 'read the sidecar');
    if (!lines) return undefined;
    const damaged = (line: number, why: string): P2PSyncError =>
      new P2PSyncError(
        'E_SIDECAR',
        `${path}:${line}: the sidecar is damaged (${why}); delete it to rebuild it (peers then re-sync in full)`,
        { file: path, line },
      );
    const first = (await lines.next()).value as FileLine;
    let header: SidecarHeader;
    try {
      header = JSON.parse(first.text) as SidecarHeader;
    } catch {
      await lines.return(undefined);
      throw damaged(1, 'unreadable header');
    }
    if (header?.p2psync !== 'sidecar' || header.v !== 1 || typeof header.token !== 'string') {
      await lines.return(undefined);
      throw damaged(1, 'not a p2psync sidecar header');
    }
    const out: SidecarContent = {
      header,
      docs: new Map(),
      unsaved: new Map(),
      unsavedStates: new Map(),
      seq: 0,
      peers: new Map(),
      markers: new Map(),
      file: undefined,
      clock: 0,
      torn: first.last ? first.text !== '' : false,
      bytes: first.bytes,
      records: 0,
    };
    const pk = header.key;
    if (pk !== primaryKey) {
      await lines.return(undefined);
      return out; // the caller reports the mismatch with the header in hand
    }
    /** Write-ahead records no file save covers yet, in journal order. */
    let ahead: AheadRecord[] = [];
    for await (const { text: line, line: lineNo, last, bytes } of lines) {
      out.bytes = bytes;
      if (last) out.torn = line !== '';
      if (line === '') continue;
      let rec: BatchRecord | WalRecord;
      try {
        rec = JSON.parse(line) as BatchRecord | WalRecord;
      } catch {
        // Only the last line can be torn by a crash; anything earlier means the file was damaged otherwise.
        if (last) {
          out.dropped = { line: lineNo, bytes: Buffer.byteLength(line) };
          break;
        }
        throw damaged(lineNo, 'unreadable line');
      }
      if (rec?.t === 'w') {
        if (typeof rec.s !== 'number') throw damaged(lineNo, 'bad write-ahead record');
        const entries = docEntries(rec.d, pk, share);
        if (!entries) throw damaged(lineNo, 'bad document record');
        ahead.push({ s: rec.s, entries, x: rec.x ?? [] });
        if (rec.s > out.seq) out.seq = rec.s;
      } else if (rec?.t === 'b') {
        const entries = docEntries(rec.d, pk, share);
        if (!entries) throw damaged(lineNo, 'bad document record');
        for (const e of entries) out.docs.set(e.id, e);
        for (const id of rec.x ?? []) out.docs.delete(id);
        if (rec.f) out.file = rec.f;
        // Everything up to `w` is in the file at `f` now.
        if (typeof rec.w === 'number') {
          const covered = rec.w;
          for (const a of ahead) if (a.s <= covered) fold(out.docs, a);
          ahead = ahead.filter((a) => a.s > covered);
        }
      } else throw damaged(lineNo, 'unknown record');
      for (const p of rec.p ?? []) replayPeer(out, p);
      out.records += journalRecords(rec);
      if (typeof rec.c === 'number' && rec.c > out.clock) out.clock = rec.c;
    }
    for (const a of ahead) {
      fold(out.unsaved, a);
      for (const e of a.entries) {
        const states = out.unsavedStates.get(e.id);
        if (states) states.push(e.doc);
        else out.unsavedStates.set(e.id, [e.doc]);
      }
    }
    // A purge in an unsaved record removes a tombstone the file never held: drop it from both.
    for (const a of ahead) for (const id of a.x) out.docs.delete(id);
    for (const e of out.unsaved.values()) if (e.lwt > out.clock) out.clock = e.lwt;
    // Markers stand for "equal to the recorded doc state", which is final only now.
    for (const [key, ids] of out.markers) {
      const state = out.peers.get(key)!;
      for (const id of ids) {
        const entry = out.unsaved.get(id) ?? out.docs.get(id);
        if (entry) (state.assumed as EntryStates).setEntry(id, entry);
        else {
          state.assumed.delete(id);
          ids.delete(id);
        }
      }
    }
    return out;
  }

  /**
   * Appends records and fsyncs them once (group commit: see `WriteAhead`). The caller checks `isOurs()` first (and
   * writes a snapshot instead if the journal was deleted or replaced): a snapshot must be taken from the state the
   * user's file holds, which only the caller knows.
   */
  async append(...records: Array<BatchRecordOut | WalRecordOut>): Promise<void> {
    if (!this.handle || this.broken) throw new P2PSyncError('E_INTERNAL', `${this.path} is not open for appending`);
    const w = new ChunkWriter(this.handle, this.out);
    try {
      for (const record of records) {
        await w.json(record);
        w.text('\n');
      }
      await w.flush();
      await this.handle.datasync();
    } catch (err) {
      // Part of the line may be in the journal: appending after it would bury a torn line mid-file. The next
      // write replaces the journal instead (`isOurs` says no).
      this.broken = true;
      throw ioError(err, this.path, 'append to the sidecar');
    }
    this.bytes += w.position;
    for (const record of records) this.records += journalRecords(record);
  }

  /**
   * Captures what a compact journal for this state holds (references to immutable entries and states), so that
   * writes can go on while `writeSnapshot` streams it out.
   */
  static snapshotOf(header: SidecarHeader, docs: Iterable<IndexEntry>, peers: PeerRecord[][]): SidecarSnapshot {
    let records = 0;
    const entries = [...docs];
    records += entries.length;
    for (const list of peers) for (const p of list) records += p.a?.length ?? 0;
    return { header, entries, peers, records };
  }

  /**
   * Atomically replaces the journal with a snapshot, ending with the file version, the clock and the write-ahead
   * sequence number the file covers (`covered`), followed by `tail`: write-ahead records cut after the snapshot was
   * taken (they were appended to the journal this replaces, or failed to be).
   */
  async writeSnapshot(
    snapshot: SidecarSnapshot,
    file: FileVersion | undefined,
    clock: number,
    covered: number,
    tail: readonly WalRecordOut[] = [],
  ): Promise<void> {
    await this.closeHandle();
    const { version } = await writeFileAtomicWith(this.path, this.out, async (w) => {
      await w.json(snapshot.header);
      const { entries } = snapshot;
      for (let i = 0; i < entries.length; i += DOCS_PER_LINE) {
        w.text(`\n{"t":"b","d":[${pairsJson(entries, i, i + DOCS_PER_LINE)}]}`);
        if (w.full) await w.flush();
      }
      for (const list of snapshot.peers) {
        for (const p of list) {
          w.text('\n');
          await w.json({ t: 'b', p: [p] } satisfies BatchRecord);
        }
      }
      w.text('\n');
      await w.json({ t: 'b', ...(file ? { f: file } : {}), c: clock, w: covered } satisfies BatchRecord);
      w.text('\n');
      for (const rec of tail) {
        await w.json(rec);
        w.text('\n');
      }
    });
    this.bytes = version.size;
    this.records = snapshot.records;
    for (const rec of tail) this.records += journalRecords(rec);
    this.broken = false;
    await this.openHandle();
  }

  /**
   * True when rewriting the journal is worth it (with `adding` appended): it is over `minBytes` and most of its
   * records are superseded.
   * Comparing records rather than bytes keeps a growing store (a long initial sync: appends only, nothing
   * superseded) from being rewritten again and again.
   */
  shouldCompact(minBytes: number, liveRecords: number, adding?: BatchRecordOut): boolean {
    return this.bytes > minBytes && this.records + (adding ? journalRecords(adding) : 0) > 2 * liveRecords;
  }

  async close(): Promise<void> {
    await this.closeHandle();
  }

  /** Starts appending to an existing journal of `bytes` bytes. */
  async attach(bytes: number, records: number): Promise<void> {
    this.bytes = bytes;
    this.records = records;
    await this.openHandle();
  }

  private async openHandle(): Promise<void> {
    try {
      this.handle = await open(this.path, 'a');
      this.ino = (await this.handle.stat()).ino;
    } catch (err) {
      throw ioError(err, this.path, 'open the sidecar');
    }
  }

  private async closeHandle(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    await h?.close().catch(() => undefined);
  }

  /** The journal we append to is still the file at our path (nobody deleted or replaced it). */
  async isOurs(): Promise<boolean> {
    if (!this.handle || this.broken) return false;
    try {
      return (await stat(this.path)).ino === this.ino;
    } catch {
      return false;
    }
  }
}

/** An entry with the same text as `entry` whose id and text strings to keep instead, if there is one (see `Sidecar.load`). */
export type ShareDoc = (id: string, entry: IndexEntry) => IndexEntry | undefined;

interface AheadRecord {
  s: number;
  entries: IndexEntry[];
  x: string[];
}

/** Applies one write-ahead record to a map of documents. */
function fold(docs: Map<string, IndexEntry>, a: AheadRecord): void {
  for (const e of a.entries) docs.set(e.id, e);
  for (const id of a.x) docs.delete(id);
}

/** The documents of a record's `d`, or undefined if one is malformed. */
function docEntries(
  d: Array<[number, DocState]> | undefined,
  pk: string,
  share: ShareDoc | undefined,
): IndexEntry[] | undefined {
  const out: IndexEntry[] = [];
  for (const pair of d ?? []) {
    const [lwt, doc] = Array.isArray(pair) ? pair : [];
    const id = doc?.[pk];
    if (typeof id !== 'string' || typeof lwt !== 'number') return undefined;
    doc!._deleted = doc!._deleted === true;
    // Kept as its text from the start: a journal of a million documents is never held parsed at once.
    const e = new IndexEntry(id, doc!, lwt);
    e.compact();
    const shared = share?.(id, e);
    // A shared entry brings its own id and text strings: the entry keeps those rather than second copies.
    out.push(shared ? shared.at(lwt) : e);
  }
  return out;
}

function replayPeer(out: SidecarContent, p: PeerRecord): void {
  let state = out.peers.get(p.k);
  let markers = out.markers.get(p.k);
  if (!state || p.reset) {
    out.peers.set(p.k, (state = { down: null, up: null, assumed: new EntryStates() }));
    out.markers.set(p.k, (markers = new Set()));
  }
  markers ??= new Set();
  out.markers.set(p.k, markers);
  if (p.down !== undefined) state.down = p.down;
  if (p.up !== undefined) state.up = p.up;
  for (const [id, v] of p.a ?? []) {
    if (v === 0) {
      state.assumed.delete(id);
      markers.delete(id);
    } else if (v === 1) {
      markers.add(id);
    } else {
      v._deleted = v._deleted === true;
      state.assumed.set(id, v);
      markers.delete(id);
    }
  }
}

/**
 * The sidecar's path for a user file: `<file>.p2psync`, or `<file>.<collection>.p2psync` for a collection of a JSON
 * object (so two collections of one lowdb file can be synced by two processes).
 */
export function sidecarPath(userPath: string, collection?: string): string {
  return collection === undefined
    ? userPath + SIDECAR_SUFFIX
    : `${userPath}.${encodeURIComponent(collection)}${SIDECAR_SUFFIX}`;
}

/** The short-lived lock held by whoever rewrites the user file (one per user file, whatever the collection). */
export function writeLockPath(userPath: string): string {
  return userPath + SIDECAR_SUFFIX + '.lock';
}

/** Document and assumed-state records in one journal line. */
function journalRecords(rec: BatchRecord | BatchRecordOut | WalRecord | WalRecordOut): number {
  let n = rec.d?.length ?? 0;
  for (const p of rec.p ?? []) n += p.a?.length ?? 0;
  return n;
}
