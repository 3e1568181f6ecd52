import type { DocState, Json, PeerState, WriteOrigin } from '../core/types.js';
import type { DocIndex, IndexEntry } from './doc-index.js';
import { sameFingerprint, type FileVersion } from './fs-util.js';
import { PeerJournal, type PeerBatch } from './peer-journal.js';
import { EntryPairs, Sidecar, type BatchRecordOut, type SidecarHeader, type SidecarSnapshot } from './sidecar.js';
import type { UserFile } from './user-file.js';
import { currentEntries, docsOf, planFile, type FilePlan } from './write-plan.js';

/** Counters for tests and benchmarks. */
export interface FileStoreStats {
  fileWrites: number;
  sidecarAppends: number;
  compactions: number;
  outsideEdits: number;
}

/** What the writer works on, owned by the store. */
export interface WriterHost {
  readonly index: DocIndex;
  readonly peerStates: Map<string, PeerState>;
  readonly file: UserFile;
  readonly sidecar: Sidecar;
  readonly primaryKey: string;
  readonly compactMinBytes: number;
  readonly stats: FileStoreStats;
}

/** Everything one write puts on disk, captured in one go while writers wait; see `FileWriter.plan`. */
export interface WritePlan {
  /**
   * What this write takes from `filePending` (for the file and the sidecar) and `sidecarOnlyPending`; `sideEntries`
   * is all of it. Pending again if the write fails.
   */
  fileEntries: IndexEntry[];
  sideEntries: IndexEntry[];
  /** Some of `fileEntries` replace documents the store had (see `planFile`). */
  replacing: boolean;
  /** The user's file; absent when it does not change. */
  file: FilePlan | undefined;
  purged: string[];
  /** The sidecar batch; the file version is added once the file is written. */
  record: BatchRecordOut;
  peers: PeerBatch | undefined;
  /** Replaces the journal instead of `record`. */
  snapshot: SidecarSnapshot | undefined;
  clock: number;
}

/**
 * The write side of a file store: what is not on disk yet, and how it gets there. A write is planned inside the
 * store's mutation queue (`plan`: synchronous but for one check of the sidecar, so it captures one state) and its
 * I/O runs outside of it (`run`), so that writers (a pull in progress) go on meanwhile. Writes run one at a time,
 * which keeps the sidecar's batches in order.
 *
 * Crash safety: the user's file is written (and fsynced, and renamed) before the sidecar records anything of it,
 * so the sidecar never records what the file does not hold.
 */
export class FileWriter {
  readonly peers = new PeerJournal();
  header!: SidecarHeader;
  /** The user file's version as p2psync last read or wrote it, and the last one the sidecar recorded. */
  knownVersion: FileVersion | undefined;
  recordedVersion: FileVersion | undefined;
  /** How long the last rewrite of the user's file took, and when it ended (the flush timer spaces rewrites by them). */
  lastWriteMs = 0;
  lastWriteEnd = -Infinity;
  /**
   * What the user's file holds as p2psync last read or wrote it, by id in file order. Undefined after an append:
   * the file's layout says the same then (`knownDocs` rebuilds the map when it is needed: for a full rewrite or an
   * outside edit, both of which cost as much anyway).
   */
  private known: Map<string, DocState> | undefined = new Map();
  /** `known` lists the documents in the order of the file's last written layout (`UserFile.layout`). */
  private layoutAligned = false;
  /**
   * Entries written since the last write began (see `currentEntries`): to put in the user's file and then record in
   * the sidecar, or (`outside` edits, which are in the file already) only to record in the sidecar.
   */
  private filePending: IndexEntry[] = [];
  private sidecarOnlyPending: IndexEntry[] = [];
  /** A pending file entry replaced a document the store had (so the file may hold it: no append). */
  private fileReplacing = false;
  private purged: string[] = [];
  /** The next write replaces the journal with a snapshot (at creation, after a torn tail, after a failed snapshot). */
  private needSnapshot = false;
  /** The write in flight (settles when it is done, whatever the outcome). */
  private writing: Promise<void> | undefined;

  constructor(private readonly host: WriterHost) {}

  /** A write is on its way to the disk. */
  get busy(): boolean {
    return this.writing !== undefined;
  }

  get pending(): boolean {
    return (
      this.filePending.length > 0 ||
      this.sidecarOnlyPending.length > 0 ||
      this.purged.length > 0 ||
      this.peers.pending ||
      this.needSnapshot ||
      !sameVersion(this.knownVersion, this.recordedVersion)
    );
  }

  /** Resolves once no write is in flight (whether it succeeded or not). */
  async idle(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /** Entries were committed to the index (`replaced`: some of their ids had entries before). */
  committed(entries: readonly IndexEntry[], origin: WriteOrigin, replaced: boolean): void {
    const pending = origin.kind === 'outside' ? this.sidecarOnlyPending : this.filePending;
    for (const e of entries) pending.push(e);
    if (origin.kind !== 'outside' && replaced) this.fileReplacing = true;
  }

  /** Tombstones were purged from the index. */
  purge(ids: readonly string[]): void {
    for (const id of ids) this.purged.push(id);
  }

  /** The next write replaces the journal (it is new, or its tail is torn). */
  requireSnapshot(): void {
    this.needSnapshot = true;
  }

  /** The user's file was read: this is what it holds (`known`, in file order) at `version`. */
  adoptFile(known: Map<string, DocState>, version: FileVersion): void {
    this.known = known;
    this.layoutAligned = false;
    this.knownVersion = version;
  }

  /** Pending writes of these ids are in the file already (an outside edit repeated them): only record them. */
  settled(ids: readonly string[]): void {
    if (ids.length === 0) return;
    const settled = new Set(ids);
    const stay: IndexEntry[] = [];
    for (const e of this.filePending) (settled.has(e.id) ? this.sidecarOnlyPending : stay).push(e);
    this.filePending = stay;
  }

  knownDocs(): Map<string, DocState> {
    // Undefined only after an append succeeded, and a layout is kept from the first write on.
    return (this.known ??= docsOf(this.host.file.layout!, this.host.primaryKey));
  }

  /**
   * Captures everything the next write puts on disk: the user's file rewritten from the index (keeping its document
   * order, new documents at the end; `root` is the rest of a collection file), then either one sidecar batch with
   * what is not recorded yet, or a compact snapshot when the journal is due for one (or was deleted). Both come
   * from the same state, so the sidecar never records what the file does not hold.
   */
  async plan(root: Record<string, Json> | undefined): Promise<WritePlan> {
    const { index, file, sidecar, peerStates, primaryKey } = this.host;
    const lost = !(await sidecar.isOurs());
    // Synchronous from here on.
    const fileEntries = currentEntries(this.filePending, index);
    const sideEntries = this.sidecarOnlyPending.length > 0 ? fileEntries.concat(currentEntries(this.sidecarOnlyPending, index)) : fileEntries;
    this.filePending = [];
    this.sidecarOnlyPending = [];
    const replacing = this.fileReplacing;
    this.fileReplacing = false;
    const known = (): Map<string, DocState> => this.knownDocs();
    const filePlan = fileEntries.length > 0 ? planFile(known, file.layout, this.layoutAligned, replacing, fileEntries, index, primaryKey, root) : undefined;
    const purged = this.purged;
    this.purged = [];
    const docOf = (id: string): DocState | undefined => index.get(id)?.doc;
    const plan: WritePlan = { fileEntries, replacing, file: filePlan, sideEntries, purged, record: { t: 'b' }, peers: undefined, snapshot: undefined, clock: index.clock };
    if (!this.needSnapshot && !lost) {
      const rec = plan.record;
      plan.peers = this.peers.take(peerStates, sideEntries, purged, docOf);
      if (sideEntries.length > 0) rec.d = new EntryPairs(sideEntries);
      if (purged.length > 0) {
        rec.x = purged;
        rec.c = plan.clock;
      }
      if (plan.peers.records.length > 0) rec.p = plan.peers.records;
      if (!sidecar.shouldCompact(this.host.compactMinBytes, this.liveRecords(), rec)) return plan;
      // The batch would make most of the journal superseded: write a snapshot instead. The peer batch is dropped
      // unwritten; the snapshot below resets the peer journal to what it holds.
      plan.peers = undefined;
    }
    // Until it is written (a failed snapshot leaves the journal behind what was taken out of the peer journal).
    this.needSnapshot = true;
    plan.snapshot = Sidecar.snapshotOf(this.header, index.entries(), this.peers.snapshot(peerStates, docOf));
    return plan;
  }

  /** Runs a plan's I/O as the write in flight; `after` runs once it is done (e.g. releasing a lock). */
  run(plan: WritePlan, after: () => Promise<void>): Promise<void> {
    const done = (async () => {
      try {
        await this.execute(plan);
      } finally {
        await after();
      }
    })();
    const settled: Promise<void> = done.then(
      () => this.finished(settled),
      () => this.finished(settled),
    );
    this.writing = settled;
    return done;
  }

  /** The I/O of a write: the user's file first, then the sidecar. On failure, what was not written is pending again. */
  async execute(plan: WritePlan): Promise<void> {
    const { file, sidecar, stats } = this.host;
    if (plan.file) {
      const started = performance.now();
      const f = plan.file;
      let version: FileVersion;
      try {
        if (f.docs) version = await file.writeDocs(f.docs, f.root, f.from);
        else {
          const added = f.added.map((e) => e.doc);
          // `known` still lists what the file holds, in its order, when appending is not possible after all.
          version = (await file.appendDocs(added, f.root)) ?? (await file.writeDocs([...this.knownDocs().values(), ...added], f.root));
        }
      } catch (err) {
        this.unplan(plan, true);
        throw err;
      }
      // After an append the file's layout is the cheaper record of what it holds (see `knownDocs`).
      this.known = f.docs ? f.next : undefined;
      this.layoutAligned = true;
      this.knownVersion = version;
      stats.fileWrites++;
      this.lastWriteEnd = performance.now();
      this.lastWriteMs = this.lastWriteEnd - started;
    }
    const version = this.knownVersion;
    try {
      if (plan.snapshot) {
        await sidecar.writeSnapshot(plan.snapshot, version, plan.clock);
        this.needSnapshot = false;
        stats.compactions++;
      } else {
        const rec = plan.record;
        if (version && !sameVersion(version, this.recordedVersion)) rec.f = version;
        if (rec.d !== undefined || rec.x !== undefined || rec.p !== undefined || rec.f !== undefined) {
          await sidecar.append(rec);
          stats.sidecarAppends++;
        }
        plan.peers?.done(true);
      }
    } catch (err) {
      this.unplan(plan, false);
      throw err;
    }
    this.recordedVersion = version;
  }

  private finished(which: Promise<void>): void {
    if (this.writing === which) this.writing = undefined;
  }

  /** A write failed: what it did not persist is pending again. */
  private unplan(plan: WritePlan, fileFailed: boolean): void {
    if (fileFailed) {
      this.fileReplacing ||= plan.replacing;
      this.filePending = plan.fileEntries.concat(this.filePending);
      this.sidecarOnlyPending = plan.sideEntries.slice(plan.fileEntries.length).concat(this.sidecarOnlyPending);
    } else {
      // The file has them now: only the sidecar still has to record them.
      this.sidecarOnlyPending = plan.sideEntries.concat(this.sidecarOnlyPending);
    }
    if (plan.purged.length > 0) this.purged = plan.purged.concat(this.purged);
    plan.peers?.done(false);
  }

  /** Records a compact sidecar holds: one per document (tombstones included) and per assumed state. */
  private liveRecords(): number {
    let n = this.host.index.size;
    for (const s of this.host.peerStates.values()) n += s.assumed.size;
    return n;
  }
}

export function sameVersion(a: FileVersion | undefined, b: FileVersion | undefined): boolean {
  if (!a || !b) return a === b;
  return a.hash === b.hash && sameFingerprint(a, b);
}
