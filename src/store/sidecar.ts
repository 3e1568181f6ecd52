import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { P2PSyncError } from '../core/errors.js';
import type { Checkpoint, DocState, Json, PeerState } from '../core/types.js';
import type { IndexEntry } from './doc-index.js';
import { ByteBuffer, ChunkWriter, JsonSlices, type PairList } from './bytes.js';
import { ioError, writeFileAtomicWith, type FileVersion } from './fs-util.js';

/**
 * The sidecar `<file>.p2psync`: an append-only NDJSON journal of everything p2psync knows beyond the user's file.
 *
 *   line 1      header: {"p2psync":"sidecar","v":1,"token":...,"key":...,"collection":...,"created":...}
 *   line 2...   batches: {"t":"b","d":[[lwt,docState],...],"x":[purged ids],"p":[peer records],"f":fileVersion,"c":clock}
 *
 * One flush appends exactly one batch line and fsyncs it, so a batch is all or nothing: a torn last line (a crash
 * mid-append) is ignored on load. A doc record holds the full doc state as p2psync last wrote or read it (for
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
  d?: Array<[number, DocState]>;
  x?: string[];
  p?: PeerRecord[];
  f?: FileVersion;
  /** The store's clock (largest lwt handed out), so purging tombstones never lets lwts go backwards. */
  c?: number;
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

  slice(start: number, end: number): Array<[number, DocState]> {
    return this.entries.slice(start, end).map((e) => [e.lwt, e.doc]);
  }
}

/** What a sidecar holds after replaying it. */
export interface SidecarContent {
  header: SidecarHeader;
  docs: Map<string, IndexEntry>;
  peers: Map<string, PeerState>;
  /** Per peer, the ids whose assumed state was stored as a marker (resolved against the final documents by `load`). */
  markers: Map<string, Set<string>>;
  file: FileVersion | undefined;
  clock: number;
  /** The journal ended in a torn or unterminated line: rewrite it before appending. */
  torn: boolean;
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

  /** Replays the journal; undefined if there is none. Throws E_SIDECAR if it is damaged beyond a torn tail. */
  static async load(path: string, primaryKey: string): Promise<SidecarContent | undefined> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw ioError(err, path, 'read the sidecar');
    }
    const damaged = (line: number, why: string): P2PSyncError =>
      new P2PSyncError('E_SIDECAR', `${path}:${line}: the sidecar is damaged (${why}); delete it to rebuild it (peers then re-sync in full)`, { file: path, line });
    const lines = text.split('\n');
    let header: SidecarHeader;
    try {
      header = JSON.parse(lines[0] ?? '') as SidecarHeader;
    } catch {
      throw damaged(1, 'unreadable header');
    }
    if (header?.p2psync !== 'sidecar' || header.v !== 1 || typeof header.token !== 'string') throw damaged(1, 'not a p2psync sidecar header');
    const out: SidecarContent = { header, docs: new Map(), peers: new Map(), markers: new Map(), file: undefined, clock: 0, torn: !text.endsWith('\n'), bytes: Buffer.byteLength(text), records: 0 };
    const pk = header.key;
    if (pk !== primaryKey) return out; // the caller reports the mismatch with the header in hand
    const last = lines.length - 1;
    for (let i = 1; i <= last; i++) {
      const line = lines[i]!;
      if (line === '') continue;
      let rec: BatchRecord;
      try {
        rec = JSON.parse(line) as BatchRecord;
      } catch {
        // Only the last line can be torn by a crash; anything earlier means the file was damaged otherwise.
        if (i === last) {
          out.torn = true;
          break;
        }
        throw damaged(i + 1, 'unreadable line');
      }
      if (rec?.t !== 'b') throw damaged(i + 1, 'unknown record');
      for (const [lwt, doc] of rec.d ?? []) {
        const id = doc[pk];
        if (typeof id !== 'string' || typeof lwt !== 'number') throw damaged(i + 1, 'bad document record');
        doc._deleted = doc._deleted === true;
        out.docs.set(id, { id, doc, lwt });
      }
      for (const id of rec.x ?? []) out.docs.delete(id);
      for (const p of rec.p ?? []) replayPeer(out, p);
      out.records += journalRecords(rec);
      if (rec.f) out.file = rec.f;
      if (typeof rec.c === 'number' && rec.c > out.clock) out.clock = rec.c;
    }
    // Markers stand for "equal to the recorded doc state", which is final only now.
    for (const [key, ids] of out.markers) {
      const state = out.peers.get(key)!;
      for (const id of ids) {
        const doc = out.docs.get(id)?.doc;
        if (doc) state.assumed.set(id, doc);
        else {
          state.assumed.delete(id);
          ids.delete(id);
        }
      }
    }
    return out;
  }

  /**
   * Appends one batch and fsyncs it. The caller checks `isOurs()` first (and writes a snapshot instead if the
   * journal was deleted or replaced): a snapshot must be taken from the state the user's file holds, which only the
   * caller knows.
   */
  async append(record: BatchRecordOut): Promise<void> {
    if (!this.handle || this.broken) throw new P2PSyncError('E_INTERNAL', `${this.path} is not open for appending`);
    const w = new ChunkWriter(this.handle, this.out);
    try {
      await w.json(record);
      w.text('\n');
      await w.flush();
      await this.handle.datasync();
    } catch (err) {
      // Part of the line may be in the journal: appending after it would bury a torn line mid-file. The next
      // write replaces the journal instead (`isOurs` says no).
      this.broken = true;
      throw ioError(err, this.path, 'append to the sidecar');
    }
    this.bytes += w.position;
    this.records += journalRecords(record);
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

  /** Atomically replaces the journal with a snapshot, ending with the file version and the clock. */
  async writeSnapshot(snapshot: SidecarSnapshot, file: FileVersion | undefined, clock: number): Promise<void> {
    await this.closeHandle();
    const { version } = await writeFileAtomicWith(this.path, this.out, async (w) => {
      await w.json(snapshot.header);
      const { entries } = snapshot;
      for (let i = 0; i < entries.length; i += DOCS_PER_LINE) {
        const d: Array<[number, DocState]> = [];
        for (const e of entries.slice(i, i + DOCS_PER_LINE)) d.push([e.lwt, e.doc]);
        w.text('\n');
        await w.json({ t: 'b', d } satisfies BatchRecord);
      }
      for (const list of snapshot.peers) {
        for (const p of list) {
          w.text('\n');
          await w.json({ t: 'b', p: [p] } satisfies BatchRecord);
        }
      }
      w.text('\n');
      await w.json({ t: 'b', ...(file ? { f: file } : {}), c: clock } satisfies BatchRecord);
      w.text('\n');
    });
    this.bytes = version.size;
    this.records = snapshot.records;
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

function replayPeer(out: SidecarContent, p: PeerRecord): void {
  let state = out.peers.get(p.k);
  let markers = out.markers.get(p.k);
  if (!state || p.reset) {
    out.peers.set(p.k, (state = { down: null, up: null, assumed: new Map() }));
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
  return collection === undefined ? userPath + SIDECAR_SUFFIX : `${userPath}.${encodeURIComponent(collection)}${SIDECAR_SUFFIX}`;
}

/** The short-lived lock held by whoever rewrites the user file (one per user file, whatever the collection). */
export function writeLockPath(userPath: string): string {
  return userPath + SIDECAR_SUFFIX + '.lock';
}

/** Document and assumed-state records in one journal line. */
function journalRecords(rec: BatchRecord | BatchRecordOut): number {
  let n = rec.d?.length ?? 0;
  for (const p of rec.p ?? []) n += p.a?.length ?? 0;
  return n;
}
