import type { DocState, Json, PeerState, WriteOrigin } from '../core/types.js';
import { IndexEntry, type DocIndex } from './doc-index.js';
import { EntryStates } from './entry-states.js';
import { sameFingerprint, type FileVersion } from './fs-util.js';
import { Sidecar, type SidecarHeader, type SidecarSnapshot } from './sidecar.js';
import type { UserFile } from './user-file.js';
import type { WriteAhead } from './write-ahead.js';
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
  readonly wal: WriteAhead;
  readonly primaryKey: string;
  readonly compactMinBytes: number;
  readonly stats: FileStoreStats;
}

/** Everything one write puts on disk, captured in one go while writers wait; see `FileWriter.plan`. */
export interface WritePlan {
  /** What this write takes from `filePending`; pending again if the write fails. */
  fileEntries: IndexEntry[];
  /** Some of `fileEntries` replace documents the store had (see `planFile`). */
  replacing: boolean;
  /** The user's file; absent when it does not change. */
  file: FilePlan | undefined;
  /** The write-ahead sequence number the file holds everything of once written (cut when the plan was made). */
  covered: number;
  /** Replaces the journal instead of recording a file save. */
  snapshot: SidecarSnapshot | undefined;
  clock: number;
}

/**
 * The user's-file side of a file store: what is not in the file yet, and how it gets there. A write is planned inside
 * the store's mutation queue (`plan`: synchronous but for one check of the sidecar, so it captures one state) and its
 * I/O runs outside of it (`run`), so that writers (a pull in progress) go on meanwhile. Writes run one at a time.
 *
 * Crash safety (docs/STORES.md, "Durability"): every write is in the journal before the file (`WriteAhead`); a file
 * save is recorded in the journal only after the file was written (fsynced and renamed), so the journal never says
 * the file holds what it does not. A crash in between leaves write-ahead records that the next open writes into the
 * file.
 */
export class FileWriter {
  header!: SidecarHeader;
  /** The user file's version as p2psync last read or wrote it, and the last one the sidecar recorded. */
  knownVersion: FileVersion | undefined;
  recordedVersion: FileVersion | undefined;
  /** When the next rewrite of the user's file may start (the store's flush timer asks). */
  readonly pacer = new FlushPacer();
  /**
   * What the user's file holds as p2psync last read or wrote it, by id in file order. Undefined after an append:
   * the file's layout says the same then (`knownDocs` rebuilds the map when it is needed: for a full rewrite or an
   * outside edit, both of which cost as much anyway).
   */
  private known: EntryStates | undefined = new EntryStates();
  /** The states `knownDocs` handed out, parsed from these entries (for `adoptFile` to map them back). */
  private parsed = new WeakMap<DocState, IndexEntry>();
  /** `known` lists the documents in the order of the file's last written layout (`UserFile.layout`). */
  private layoutAligned = false;
  /** Entries written since the last write began (see `currentEntries`), to put in the user's file. */
  private filePending: IndexEntry[] = [];
  /** A pending file entry replaced a document the store had (so the file may hold it: no append). */
  private fileReplacing = false;
  /** The next write replaces the journal with a snapshot (at creation, after a torn tail, after a failed snapshot). */
  private needSnapshot = false;
  /** The write of the user's file in flight (settles when it is done, whatever the outcome). */
  private writing: Promise<void> | undefined;
  /**
   * The journal record of the last write, once its file is written (settles when it is done, whatever the outcome),
   * and the version it records. The next write's file goes on meanwhile; its record follows this one.
   */
  private recording: Recording | undefined;

  constructor(private readonly host: WriterHost) {}

  /** A write of the user's file is on its way to the disk (its journal record may follow on its own). */
  get busy(): boolean {
    return this.writing !== undefined;
  }

  get pending(): boolean {
    const recorded = this.recording ? this.recording.version : this.recordedVersion;
    return this.filePending.length > 0 || this.needSnapshot || !sameVersion(this.knownVersion, recorded);
  }

  /** Documents the user's file does not hold yet (changed since its last save). */
  get unsaved(): number {
    return new Set(this.filePending.map((e) => e.id)).size;
  }

  /** Resolves once no write of the user's file is in flight (whether it succeeded or not). */
  async idle(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /** Resolves once no write is in flight and every written file is recorded in the journal (or failed to be). */
  async recorded(): Promise<void> {
    while (this.writing || this.recording) {
      await this.writing;
      await this.recording?.done;
    }
  }

  /**
   * Entries were committed to the index (`replaced`: some of their ids had entries before). Outside edits are in the
   * file already: only the journal records them.
   */
  committed(entries: readonly IndexEntry[], origin: WriteOrigin, replaced: boolean): void {
    if (origin.kind === 'outside') return;
    for (const e of entries) this.filePending.push(e);
    if (replaced) this.fileReplacing = true;
  }

  /** The next write replaces the journal (it is new, or its tail is torn). */
  requireSnapshot(): void {
    this.needSnapshot = true;
  }

  /**
   * The user's file was read: this is what it holds (`known`, in file order) at `version`. Each state is kept as an
   * index entry: the index's own where it has that state (just written, or handed out by `knownDocs`), else one of
   * its own (a state the index has moved past, e.g. a write not in the file yet). An `EntryStates` is taken over.
   */
  adoptFile(known: Map<string, DocState>, version: FileVersion): void {
    const { index } = this.host;
    const parsed = this.parsed;
    let map: EntryStates;
    if (known instanceof EntryStates) map = known;
    else {
      map = new EntryStates();
      for (const [id, doc] of known) map.set(id, doc);
    }
    for (const [id, held] of map.held()) {
      const e = index.get(id);
      let mine: IndexEntry;
      if (held instanceof IndexEntry) {
        // The index's own entry where it has this very text (a file's document just taken in), not a second one.
        if (e === undefined || e === held || e.deleted || !e.sameText(held)) continue;
        mine = e;
      } else {
        const found = e?.holds(held) ? e : parsed.get(held);
        if (found) mine = found;
        else {
          mine = new IndexEntry(id, held, 0);
          mine.compact();
          if (e !== undefined && !e.deleted && e.sameText(mine)) mine = e;
        }
      }
      map.setEntry(id, mine);
    }
    map.index = undefined;
    map.parsed = undefined;
    this.parsed = new WeakMap();
    this.known = map;
    this.layoutAligned = false;
    this.knownVersion = version;
  }

  /** Pending writes of these ids are in the file already (an outside edit repeated them; the journal has them). */
  settled(ids: readonly string[]): void {
    if (ids.length === 0) return;
    const settled = new Set(ids);
    this.filePending = this.filePending.filter((e) => !settled.has(e.id));
  }

  /**
   * What the user's file holds, as states parsed on demand (for outside edits to diff against): the writer's own
   * map, which `adoptFile` takes back (changed or not).
   */
  knownDocs(): Map<string, DocState> {
    const known = this.knownEntries();
    known.parsed = this.parsed;
    return known;
  }

  /** `known`, every value an entry. */
  private knownEntries(): EntryStates {
    // Undefined only after an append succeeded, and a layout is kept from the first write on.
    return (this.known ??= docsOf(this.host.file.layout!));
  }

  /**
   * Captures everything the next write puts on disk: the user's file rewritten from the index (keeping its document
   * order, new documents at the end; `root` is the rest of a collection file), then either a file save recorded in
   * the journal, or a compact snapshot of the journal when it is due for one (or was deleted). Everything committed so
   * far is cut into the write-ahead log first, so the file save covers exactly what the file will hold.
   */
  async plan(root: Record<string, Json> | undefined): Promise<WritePlan> {
    const { index, file, sidecar, peerStates, wal } = this.host;
    const lost = !(await sidecar.isOurs());
    // Synchronous from here on.
    const covered = wal.cut();
    const fileEntries = currentEntries(this.filePending, index);
    this.filePending = [];
    const replacing = this.fileReplacing;
    this.fileReplacing = false;
    const known = (): ReadonlyMap<string, unknown> => this.knownEntries();
    const filePlan =
      fileEntries.length > 0
        ? planFile(known, file.layout, this.layoutAligned, replacing, fileEntries, index, root)
        : undefined;
    const plan: WritePlan = {
      fileEntries,
      replacing,
      file: filePlan,
      covered,
      snapshot: undefined,
      clock: index.clock,
    };
    if (!this.needSnapshot && !lost && !sidecar.shouldCompact(this.host.compactMinBytes, this.liveRecords()))
      return plan;
    // Until it is written (a failed snapshot leaves the journal unusable: see `WriteAhead`).
    this.needSnapshot = true;
    const entryOf = (id: string): IndexEntry | undefined => index.get(id);
    plan.snapshot = Sidecar.snapshotOf(this.header, index.entries(), wal.peers.snapshot(peerStates, entryOf));
    return plan;
  }

  /**
   * Runs a plan's I/O: the user's file as the write in flight, then `after` (e.g. releasing a lock), then its journal
   * record, after the record of the write before. The next write may start as soon as the file is written: a live
   * change that follows closely does not wait for the journal's fsync of the save before it. Resolves once the
   * record is written.
   */
  run(plan: WritePlan, after: () => Promise<void>): Promise<void> {
    const before = this.recording?.done;
    const rec: Recording = { done: Promise.resolve(), version: undefined };
    const written = (async () => {
      try {
        rec.version = await this.writeFile(plan);
      } finally {
        await after();
      }
    })();
    const fileSettled: Promise<void> = written.then(
      () => this.finished(fileSettled),
      () => this.finished(fileSettled),
    );
    this.writing = fileSettled;
    const done = written.then(async () => {
      await before;
      await this.record(plan, rec.version);
    });
    rec.done = done.then(
      () => this.recordingEnded(rec),
      () => this.recordingEnded(rec),
    );
    this.recording = rec;
    return done;
  }

  /** The I/O of a write: the user's file first, then the journal. On failure, what was not written is pending again. */
  async execute(plan: WritePlan): Promise<void> {
    await this.record(plan, await this.writeFile(plan));
  }

  /**
   * Writes the user's file (if the plan changes it) and returns the version the journal is to record. On failure,
   * what was not written is pending again.
   */
  private async writeFile(plan: WritePlan): Promise<FileVersion | undefined> {
    const { file, stats } = this.host;
    if (plan.file) {
      const started = performance.now();
      const cpu = process.cpuUsage();
      this.pacer.started(started);
      const f = plan.file;
      let version: FileVersion;
      try {
        if (f.docs) version = await file.writeDocs(f.docs, f.root, f.from);
        else {
          const added = f.added;
          // `known` still lists what the file holds, in its order, when appending is not possible after all.
          version =
            (await file.appendDocs(added, f.root)) ??
            (await file.writeDocs(
              [...this.knownEntries().held()].map(([, e]) => e as IndexEntry).concat(added),
              f.root,
            ));
        }
      } catch (err) {
        this.pacer.ended(performance.now(), cpuMs(cpu));
        this.unplan(plan);
        throw err;
      }
      // After an append the file's layout is the cheaper record of what it holds (see `knownDocs`).
      this.known = f.docs ? f.next : undefined;
      this.layoutAligned = true;
      this.knownVersion = version;
      stats.fileWrites++;
      this.pacer.ended(performance.now(), cpuMs(cpu));
    }
    return this.knownVersion;
  }

  /**
   * Records in the journal that the file is at `version` (a file save, or a snapshot that replaces the journal), once
   * the rename that put it there is durable: the journal never says the file holds what a power cut could undo.
   */
  private async record(plan: WritePlan, version: FileVersion | undefined): Promise<void> {
    const { stats } = this.host;
    if (plan.file) await this.host.file.syncDir();
    if (plan.snapshot) {
      await this.host.wal.snapshot(plan.snapshot, version, plan.clock, plan.covered);
      this.needSnapshot = false;
      stats.compactions++;
    } else if (plan.file || !sameVersion(version, this.recordedVersion)) {
      // Nothing to undo on failure: the file is written, and the journal has every write (or a snapshot follows).
      await this.host.wal.recordFileSave(
        version && !sameVersion(version, this.recordedVersion) ? version : undefined,
        plan.covered,
      );
      stats.sidecarAppends++;
    }
    this.recordedVersion = version;
  }

  private finished(which: Promise<void>): void {
    if (this.writing === which) this.writing = undefined;
  }

  private recordingEnded(which: Recording): void {
    if (this.recording === which) this.recording = undefined;
  }

  /** A write of the file failed: what it did not write is pending again. */
  private unplan(plan: WritePlan): void {
    this.fileReplacing ||= plan.replacing;
    this.filePending = plan.fileEntries.concat(this.filePending);
  }

  /** Records a compact sidecar holds: one per document (tombstones included) and per assumed state. */
  private liveRecords(): number {
    let n = this.host.index.size;
    for (const s of this.host.peerStates.values()) n += s.assumed.size;
    return n;
  }
}

interface Recording {
  done: Promise<void>;
  version: FileVersion | undefined;
}

export function sameVersion(a: FileVersion | undefined, b: FileVersion | undefined): boolean {
  if (!a || !b) return a === b;
  return a.hash === b.hash && sameFingerprint(a, b);
}

/**
 * A rewrite is not repeated more often than every few times its own cost: caps the share of CPU it takes. A stream
 * of commits (a sync, a burst) is held to a fifth of the time; a live change, one that finds nothing else pending
 * and no rewrite in flight, to half of it (see `FlushPacer`).
 */
const STREAM_COST_FACTOR = 4;
const LIVE_COST_FACTOR = 1;
/** Longest wait for the next rewrite, however long the last one took. */
const MAX_FLUSH_DELAY_MS = 2_000;
/**
 * Rewriting time a quiet store may spend at once before the cost factor spaces rewrites: enough for a live change
 * after another (each one written at once) without letting a stream of small changes rewrite a big file back to back.
 */
const FLUSH_BURST_MS = 250;

/**
 * Paces the rewrites of the user's file by their cost, as token buckets of rewriting time: while no rewrite runs,
 * credit grows by a factor-th of the time that passes (up to `FLUSH_BURST_MS`), and each rewrite spends the CPU time
 * it took. A change finds credit after a quiet spell, or between live changes of a small file, and is written at
 * once; a sync that commits page after page runs the credit out and gets one rewrite per `STREAM_COST_FACTOR + 1`
 * times its cost, which keeps rewriting to a fifth of the time or less. A live change (the store was idle when it
 * came: no rewrite in flight, nothing else pending) asks the second bucket, whose factor is `LIVE_COST_FACTOR`:
 * waiting would not batch it with anything, only delay it, so changes of a file of 10,000 documents that follow
 * each other as fast as their rewrites are each written at once, and only a big file's rewrites (each a large
 * share of the time) are spaced, to half of the time. (Spacing each rewrite by a few times the last one, and by at
 * least 20 ms, made a live change that came soon after another wait for most of that spacing; one budget of a fifth
 * for everything held changes 15 ms apart at about 30 ms each.)
 */
export class FlushPacer {
  private readonly stream = new RewriteBudget(STREAM_COST_FACTOR);
  private readonly live = new RewriteBudget(LIVE_COST_FACTOR);

  /**
   * How long to wait before the next rewrite, at `now` (no rewrite in flight): 0 while there is credit, else until
   * there is again. `live`: the change found the store idle (see above).
   */
  delay(now: number, live = false): number {
    return (live ? this.live : this.stream).delay(now);
  }

  started(now: number): void {
    this.stream.started(now);
    this.live.started(now);
  }

  /**
   * The rewrite ended at `now` (whether it worked or not: it cost the time). It costs the CPU time the process used
   * meanwhile (`cpuMs`), at most the time it took: on a busy machine a rewrite waits for a core, which slows it down
   * without costing anything more, and must not delay the next live change.
   */
  ended(now: number, cpuMs: number): void {
    this.stream.ended(now, cpuMs);
    this.live.ended(now, cpuMs);
  }
}

/** One token bucket of rewriting time (see `FlushPacer`). */
class RewriteBudget {
  /** Milliseconds of rewriting allowed now, as of `at` (negative: owed). */
  private credit = FLUSH_BURST_MS;
  private at = 0;
  private writing = false;

  constructor(private readonly factor: number) {}

  delay(now: number): number {
    return Math.min(MAX_FLUSH_DELAY_MS, Math.max(0, -this.creditAt(now) * this.factor));
  }

  started(now: number): void {
    this.credit = this.creditAt(now);
    this.at = now;
    this.writing = true;
  }

  ended(now: number, cpuMs: number): void {
    this.writing = false;
    const cost = Math.min(now - this.at, cpuMs);
    // Owing more than the longest wait would only delay the rewrite after next.
    this.credit = Math.max(-MAX_FLUSH_DELAY_MS / this.factor, this.credit - cost);
    this.at = now;
  }

  private creditAt(now: number): number {
    if (this.writing) return this.credit;
    return Math.min(FLUSH_BURST_MS, this.credit + (now - this.at) / this.factor);
  }
}

/** CPU time the process used since `since` (all threads: the rewrite's copy and fsyncs run in libuv's pool). */
function cpuMs(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}
